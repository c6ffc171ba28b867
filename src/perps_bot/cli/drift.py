"""`perps-bot drift`: how far the paper results sit from what the exchange did (SPEC 14).

`--live RUN` names a live (or dry) run whose capture is in `data/captures/<run>/`. The
paper side is `--replay RUN`, or else a new replay of that capture with the captured
profile's fill model (stored next to the live run). The comparison (metrics.drift) is
printed as a table, JSON or an HTML page, and its summary is stored with the live run:
`promote --to prod` checks it. `--calibrate` searches the fill-model parameters that
minimise the drift instead (orchestrator.calibrate) and prints the profile lines.
Bad input (no database, unknown run, no capture) is one line and exit code 2.
"""

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from perps_bot.cli.report import ReportFormat
from perps_bot.config import load_settings
from perps_bot.feeds.replay import ReplayFeed, read_meta, round_trip_latencies
from perps_bot.metrics.drift import Drift, compare
from perps_bot.metrics.drift_html import render_drift_html, shown
from perps_bot.orchestrator.calibrate import calibrate, describe
from perps_bot.orchestrator.replay import FillChoice, run_replay
from perps_bot.storage import RunStore, StoreError
from perps_bot.storage.drift_store import save_drift
from perps_bot.storage.lock import DatabaseLock


def _fail(message: str) -> NoReturn:
    typer.echo(f"perps-bot: {' '.join(message.split())}", err=True)
    raise typer.Exit(2)


def _capture_of(store: RunStore, run_id: str, capture: Path | None) -> tuple[str, Path]:
    try:
        run = store.run(run_id)
    except StoreError as exc:
        _fail(str(exc))
    if run.kind not in ("live", "dry_run"):
        _fail(f"run {run.run_id} is a {run.kind} run: drift compares a live or dry run")
    if capture is None:
        data_dir = json.loads(run.config_json).get("run", {}).get("data_dir", "data")
        capture = Path(data_dir) / "captures" / run.run_id
    read_meta(capture)  # FeedError (one line, exit 2) when it is not a capture
    return run.run_id, capture


def drift_command(
    live: Annotated[str, typer.Option("--live", help="The live (or dry) run, or 'latest'.")],
    replay: Annotated[
        str | None,
        typer.Option("--replay", help="A replay run of it (default: replay its capture now)."),
    ] = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="table | json | html.")] = (
        ReportFormat.table
    ),
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file.")] = None,
    calibrate_: Annotated[
        bool,
        typer.Option("--calibrate", help="Search the fill model that minimises the drift."),
    ] = False,
    capture: Annotated[
        Path | None, typer.Option("--capture", help="Capture folder (default: the run's).")
    ] = None,
    profile: Annotated[str, typer.Option("--profile", help="Profile whose database.")] = "canary",
    db: Annotated[Path | None, typer.Option("--db", help="Database file.")] = None,
) -> None:
    """Drift of a live run from the paper replay of its own capture."""
    path = db or load_settings(profile).database_path
    if not path.exists():
        _fail(f"no database at {path}: run the bot first (or pass --db)")
    with RunStore(path, read_only=True) as store:
        live_id, folder = _capture_of(store, live, capture)
    console = Console()
    if calibrate_:
        _calibrate(path, live_id, folder, console)
        return
    if replay is None:
        typer.echo(f"replaying capture {folder} ...", err=True)
        _, result = run_replay(folder, FillChoice(), db=str(path))
        replay = result.run_id
    with DatabaseLock(path), RunStore(path) as store:
        try:
            drift = compare(store, live_id, store, replay, ReplayFeed(folder).events(),
                            round_trip_latencies(folder))  # fmt: skip
        except StoreError as exc:
            _fail(str(exc))
        save_drift(store, drift.live_run, drift.replay_run, drift.fill_model, drift.summary)
    _emit(drift, fmt, out, console)


def _calibrate(path: Path, live_id: str, folder: Path, console: Console) -> None:
    typer.echo(f"calibrating the fill model on capture {folder} ...", err=True)
    with RunStore(path, read_only=True) as store:
        trials = calibrate(folder, store, live_id, say=lambda t: console.print(t, highlight=False))
    best = trials[0]
    console.print(f"best: {describe(best.choice)} (score {best.score:.3f})", highlight=False)
    for key in ("median_slippage_drift_bps", "fill_rate_drift", "signal_agreement",
                "pnl_tracking_error"):  # fmt: skip
        console.print(f"  {key}: {shown(best.drift.summary.get(key))}", highlight=False)
    console.print("profile lines:", highlight=False)
    for line in best.choice.profile_lines():
        console.print(line, highlight=False, markup=False)


def _emit(drift: Drift, fmt: ReportFormat, out: Path | None, console: Console) -> None:
    if fmt is ReportFormat.table:
        table = Table(title=f"drift of {drift.live_run} (paper: replay {drift.replay_run})")
        table.add_column("measure")
        table.add_column("value", justify="right")
        for key, value in drift.summary.items():
            table.add_row(key, shown(value))
        for key, value in drift.fill_model.items():
            table.add_row(f"paper {key}", shown(value))
        target = console if out is None else Console(file=out.open("w"), width=120)
        target.print(table)
        return
    if fmt is ReportFormat.json:
        text = json.dumps(drift.as_json(), sort_keys=True, indent=1) + "\n"
    else:
        text = render_drift_html(drift)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


def register(app: typer.Typer) -> None:
    app.command("drift")(drift_command)
