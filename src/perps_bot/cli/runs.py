"""`perps-bot runs list` and `perps-bot runs compare` (SPEC 15).

Exit codes as for `report`: 0 ok, 2 bad input (no database, unknown run, bad
flag) with one line on stderr.
"""

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from perps_bot.cli.report import (
    ReportFormat,
    _fail,
    _open_existing,
    _profile_settings,
    _source_db,
    _write,
)

if TYPE_CHECKING:  # the product and rich's tables load when a command runs
    from rich.console import Console
    from rich.table import Table

    from perps_bot.metrics.compare import RunRow

runs_app = typer.Typer(
    name="runs",
    help="List the stored runs, or compare runs side by side.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


class ListFormat(StrEnum):
    table = "table"
    json = "json"


_PROFILE = typer.Option("--profile", help="Read this profile's database [default: dev].")
_DB = typer.Option("--db", help="Database file to read (default: the profile's database).")


def _console(file: TextIO | None = None) -> "Console":
    """Wide tables keep one line per run when piped (a terminal keeps its own width).
    Strategy names and parameters are printed as they are, never read as rich markup."""
    from rich.console import Console

    if file is not None:
        return Console(file=file, width=200, color_system=None, markup=False, emoji=False)
    console = Console(markup=False, emoji=False)
    return console if console.is_terminal else Console(width=200, markup=False, emoji=False)


def _list_table(rows: "list[RunRow]", matched: int) -> "Table":
    from rich.table import Table

    from perps_bot.metrics.formatting import duration_text

    title = f"Runs ({len(rows)} of {matched}, newest first)" if matched > len(rows) else "Runs"
    table = Table(title=title, title_justify="left")
    table.add_column("id", no_wrap=True)
    for column in ("kind", "profile", "strategy", "start (UTC)", "duration"):
        table.add_column(column)
    for column in ("trades", "return"):
        table.add_column(column, justify="right")
    table.add_column("status")
    for row in rows:
        d = row.as_dict()
        table.add_row(
            d["run_id"],
            d["kind"],
            d["profile"],
            d["strategy"],
            "?" if d["start"] is None else d["start"][:16].replace("T", " "),
            "?" if row.duration_s is None else duration_text(row.duration_s),
            str(row.trades),
            "n/a" if row.return_pct is None else f"{row.return_pct:+.2f}%",
            row.run.status,
        )
    return table


@runs_app.command("list")
def list_command(
    profile: Annotated[str | None, _PROFILE] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only runs of this kind: dev, backtest, ...")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only runs with this status: completed, ...")
    ] = None,
    strategy: Annotated[
        str | None, typer.Option("--strategy", help="Only runs of this strategy.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=0, help="Show the newest N runs (0: all).")
    ] = 20,
    fmt: Annotated[ListFormat, typer.Option("--format", help="table or json.")] = ListFormat.table,
    db: Annotated[Path | None, _DB] = None,
) -> None:
    """Stored runs, newest first: id, kind, profile, strategy, start, duration, trades,
    return and status."""
    from perps_bot.metrics.compare import run_rows  # not on every command's start-up path
    from perps_bot.storage import StoreError

    # runs are stored under the profile's name: a profile given as a YAML path matched none
    name = _profile_settings(profile).profile if profile else None
    store = _open_existing(_source_db(db, profile, "dev"), read_only=True)
    try:
        rows, matched = run_rows(
            store, kind=kind, profile=name, status=status, strategy=strategy, limit=limit
        )
    except StoreError as exc:
        _fail(str(exc))
    finally:
        store.close()
    if fmt is ListFormat.json:
        payload = {"matched": matched, "runs": [r.as_dict() for r in rows]}
        sys.stdout.write(json.dumps(payload, sort_keys=True, indent=2) + "\n")
        return
    console = _console()
    if not rows:
        console.print("No runs match.")
        return
    console.print(_list_table(rows, matched))


@runs_app.command("compare")
def compare_command(
    run_ids: Annotated[
        list[str], typer.Argument(metavar="RUN RUN ...", help="Two or more run ids (or 'latest').")
    ],
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="table, json or html.")
    ] = ReportFormat.table,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file, not stdout.")
    ] = None,
    profile: Annotated[str | None, _PROFILE] = None,
    db: Annotated[Path | None, _DB] = None,
) -> None:
    """Metrics and criteria of several runs side by side."""
    from rich.table import Table

    from perps_bot.metrics import ReportError, build_report
    from perps_bot.metrics.compare import comparison_dict, comparison_rows, render_compare_html
    from perps_bot.storage import StoreError

    if len(run_ids) < 2:
        _fail("runs compare needs at least two runs")
    store = _open_existing(_source_db(db, profile, "dev"), read_only=True)
    try:
        reports = [build_report(store, run_id) for run_id in run_ids]
    except (StoreError, ReportError) as exc:
        _fail(str(exc))
    finally:
        store.close()
    if fmt is ReportFormat.table:
        table = Table(title="Runs compared ((!) = from too little data)", title_justify="left")
        table.add_column("")
        for report in reports:
            table.add_column(report.run.run_id, justify="right")
        for label, values in comparison_rows(reports):
            table.add_row(label, *values)
        if out is None:
            _console().print(table)
            return
        with _write(out) as fh:
            _console(fh).print(table)
        return
    if fmt is ReportFormat.json:
        text = json.dumps(comparison_dict(reports), sort_keys=True, indent=2) + "\n"
    else:
        text = render_compare_html(reports)
    if out is None:
        sys.stdout.write(text)
        return
    with _write(out) as fh:
        fh.write(text)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
