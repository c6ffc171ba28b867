"""`perps-bot drift`: how far the paper results sit from what the exchange did (SPEC 14).

`--live RUN` names a live (or dry) run whose capture is in `data/captures/<run>/`. The
paper side is `--replay RUN`, or else a new replay of that capture with the captured
profile's fill model (stored next to the live run). The comparison (metrics.drift) is
printed as a table, JSON or an HTML page, and its summary is stored with the live run:
`promote --to prod` checks it. `--calibrate` searches the fill-model parameters that
minimise the drift instead (orchestrator.calibrate) and prints the profile lines.

A run with several portfolios (SPEC 10) gets one drift per portfolio, each stored with
that portfolio's run (what `promote --to prod --portfolio ID` checks): `--portfolio ID`
or `--live RUN.ID` picks one. The capture and its replay are the whole run's.
Bad input (no database, unknown run, no capture, a `--replay` that is not a replay of the
live run, a `--capture` of another run) is one line and exit code 2.
"""

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from perps_bot.cli.report import ReportFormat, _write

if TYPE_CHECKING:  # the product loads when the command runs, not at the CLI's start-up
    from rich.console import Console
    from rich.table import Table

    from perps_bot.metrics.drift import Drift
    from perps_bot.storage import RunRecord, RunStore


_EXCHANGE_KINDS = ("live", "dry_run")  # the runs that capture what they traded on


def _fail(message: str) -> NoReturn:
    typer.echo(f"perps-bot: {' '.join(message.split())}", err=True)
    raise typer.Exit(2)


def _capture_of(
    store: "RunStore", run_id: str, capture: Path | None, portfolio: str | None
) -> tuple[str, str | None, Path]:
    """The account's run, the portfolio asked for (None: every one) and the capture."""
    from perps_bot.feeds.replay import incomplete_warning, read_meta
    from perps_bot.storage import StoreError

    try:
        run = _latest_exchange_run(store) if run_id == "latest" else store.run(run_id)
        if run.parent_run_id is not None:  # a portfolio's run: its account run was captured
            if portfolio not in (None, run.portfolio):
                _fail(f"run {run.run_id} is portfolio {run.portfolio}, not {portfolio}")
            portfolio, run = run.portfolio, store.run(run.parent_run_id)
        if portfolio is not None:
            store.portfolio_run(run.run_id, portfolio)  # StoreError naming the known ones
    except StoreError as exc:
        _fail(str(exc))
    if run.kind not in _EXCHANGE_KINDS:
        _fail(f"run {run.run_id} is a {run.kind} run: drift compares a live or dry run")
    if capture is None:
        data_dir = json.loads(run.config_json).get("run", {}).get("data_dir", "data")
        capture = Path(data_dir) / "captures" / run.run_id
    meta = read_meta(capture)  # FeedError (one line, exit 2) when it is not a capture
    captured = meta.get("run_id")
    if captured is not None and captured != run.run_id:  # another run's market and orders
        _fail(f"capture {capture} is run {captured}'s, not {run.run_id}'s")
    warning = incomplete_warning(capture, meta)
    if warning is not None:
        typer.echo(f"perps-bot: {warning}", err=True)
    return run.run_id, portfolio, capture


def _latest_exchange_run(store: "RunStore") -> "RunRecord":
    """`--live latest`: the latest live or dry run (drift stores its replays next to it:
    the latest run of any kind is often one of them)."""
    from perps_bot.storage import StoreError

    runs = [r for r in store.runs() if r.parent_run_id is None and r.kind in _EXCHANGE_KINDS]
    if not runs:
        raise StoreError(f"no live or dry run in {store.path}: run the bot first")
    return runs[-1]


def _paper_run(path: Path, live_id: str, folder: Path, replay: str | None) -> str:
    """The replay run drift measures against: `--replay` once checked, else a new replay
    of the capture (exit 1 when it does not complete: a part of the capture is no paper
    side to store a drift of)."""
    from perps_bot.orchestrator.replay import FillChoice, run_replay
    from perps_bot.storage import RunStore

    if replay is not None:
        with RunStore(path, read_only=True) as store:
            _check_replay(store, replay, live_id)
        return replay
    typer.echo(f"replaying capture {folder} ...", err=True)
    _, result = run_replay(folder, FillChoice(), db=str(path))
    if result.status != "completed":
        detail = f": {result.detail}" if result.detail else ""
        typer.echo(f"perps-bot: replay {result.run_id} {result.status}{detail}", err=True)
        raise typer.Exit(1)
    return result.run_id


def _check_replay(store: "RunStore", replay: str, live_id: str) -> None:
    """`--replay` must name a replay of the live run (or one of its portfolios' runs):
    drift against any other run is stored with the live run as if it were its paper
    side, and the live run against itself measures no drift at all and passes the prod
    gate."""
    from perps_bot.storage import StoreError

    try:
        run = store.run(replay)
        if run.parent_run_id is not None:  # a portfolio's run: the account run replayed
            run = store.run(run.parent_run_id)
    except StoreError as exc:
        _fail(str(exc))
    replay_of = json.loads(run.config_json).get("run", {}).get("replay_of")
    if run.kind != "replay" or replay_of != live_id:
        what = f"a replay of {replay_of}" if run.kind == "replay" else f"a {run.kind} run"
        _fail(f"run {run.run_id} is {what}, not a replay of {live_id} (omit --replay to replay it)")
    if run.status != "completed":  # it stopped part of the way through the capture
        _fail(f"replay {run.run_id} is {run.status}, not completed (omit --replay to replay again)")


def drift_command(
    live: Annotated[
        str,
        typer.Option("--live", help="The live (or dry) run, or 'latest' (the latest of those)."),
    ],
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
    portfolio: Annotated[
        str | None,
        typer.Option("--portfolio", help="One portfolio of a run with several [default: each]."),
    ] = None,
    profile: Annotated[str, typer.Option("--profile", help="Profile whose database.")] = "canary",
    db: Annotated[Path | None, typer.Option("--db", help="Database file.")] = None,
) -> None:
    """Drift of a live run from the paper replay of its own capture."""
    from rich.console import Console

    from perps_bot.config import load_settings
    from perps_bot.feeds.replay import ReplayFeed, round_trip_latencies
    from perps_bot.metrics.drift import ArrivalMids, compare, portfolio_runs
    from perps_bot.storage import RunStore, StoreError
    from perps_bot.storage.drift_store import save_drift
    from perps_bot.storage.lock import DatabaseLock

    path = db or load_settings(profile).database_path
    if not path.exists():
        _fail(f"no database at {path}: run the bot first (or pass --db)")
    with RunStore(path, read_only=True) as store:
        live_id, portfolio, folder = _capture_of(store, live, capture, portfolio)
        several = portfolio is None and len(store.children(live_id)) > 1
    if several and fmt is ReportFormat.html and not calibrate_:
        _fail(f"run {live_id} has several portfolios: give --portfolio ID for an HTML page")
    console = Console()
    if calibrate_:
        _calibrate(path, live_id, portfolio, folder, console)
        return
    replay = _paper_run(path, live_id, folder, replay)
    events, latencies = ArrivalMids(ReplayFeed(folder).iter_events()), round_trip_latencies(folder)
    with DatabaseLock(path), RunStore(path) as store:
        try:
            drifts = [compare(store, live_run, store, paper_run, events, latencies)
                      for _, live_run, paper_run in portfolio_runs(
                          store, live_id, store, replay, portfolio)]  # fmt: skip
        except StoreError as exc:
            _fail(str(exc))
        for drift in drifts:
            save_drift(store, drift.live_run, drift.replay_run, drift.fill_model, drift.summary)
    _emit(drifts, fmt, out, console)


def _calibrate(
    path: Path, live_id: str, portfolio: str | None, folder: Path, console: "Console"
) -> None:
    from perps_bot.feeds.replay import round_trip_latencies
    from perps_bot.metrics.drift_html import shown
    from perps_bot.orchestrator.calibrate import calibrate, describe
    from perps_bot.storage import RunStore

    typer.echo(f"calibrating the fill model on capture {folder} ...", err=True)
    with RunStore(path, read_only=True) as store:
        trials = calibrate(folder, store, live_id, portfolio=portfolio,
                           say=lambda t: console.print(t, highlight=False))  # fmt: skip
    best = trials[0]
    console.print(f"best: {describe(best.choice)} (score {best.score:.3f})", highlight=False)
    for drift in best.drifts:
        if len(best.drifts) > 1:
            console.print(f" {drift.live_run}:", highlight=False)
        for key in ("median_slippage_drift_bps", "fill_rate_drift", "signal_agreement",
                    "pnl_tracking_error"):  # fmt: skip
            console.print(f"  {key}: {shown(drift.summary.get(key))}", highlight=False)
    console.print("profile lines:", highlight=False)
    for line in best.choice.profile_lines(round_trip_latencies(folder)):
        console.print(line, highlight=False, markup=False)


def _emit(drifts: "list[Drift]", fmt: ReportFormat, out: Path | None, console: "Console") -> None:
    """One drift as before; several (one per portfolio): a table each, or JSON
    {"portfolios": [...]}."""
    from rich.console import Console

    from perps_bot.metrics.drift_html import render_drift_html

    if fmt is ReportFormat.table:
        if out is None:
            for drift in drifts:
                console.print(_table(drift))
            return
        with _write(out) as fh:
            target = Console(file=fh, width=120, color_system=None)
            for drift in drifts:
                target.print(_table(drift))
        return
    if fmt is ReportFormat.json:
        data = drifts[0].as_json() if len(drifts) == 1 else {
            "portfolios": [d.as_json() for d in drifts]}  # fmt: skip
        text = json.dumps(data, sort_keys=True, indent=1) + "\n"
    else:
        text = render_drift_html(drifts[0])
    if out is None:
        sys.stdout.write(text)
    else:
        with _write(out) as fh:  # a path that cannot be written: one line, exit 2
            fh.write(text)


def _table(drift: "Drift") -> "Table":
    from rich.table import Table

    from perps_bot.metrics.drift_html import shown

    table = Table(title=f"drift of {drift.live_run} (paper: replay {drift.replay_run})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in drift.summary.items():
        table.add_row(key, shown(value))
    for key, value in drift.fill_model.items():
        table.add_row(f"paper {key}", shown(value))
    return table


def register(app: typer.Typer) -> None:
    app.command("drift")(drift_command)
