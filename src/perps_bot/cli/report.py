"""`perps-bot report` and `perps-bot promote` (SPEC 6).

`register(app)` adds both commands to the main Typer app. Exit codes: 0 ok,
1 promotion refused (failed criteria or wrong kind of run), 2 bad input (no
database, unknown run, unreadable stored config) with one line on stderr.
"""

import contextlib
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TextIO

import typer

if TYPE_CHECKING:  # the product loads when a command runs, not at the CLI's start-up
    from rich.console import Console

    from perps_bot.config import PromotionConfig, Settings
    from perps_bot.metrics import Report
    from perps_bot.storage import RunStore

# The profile whose runs are the evidence for each stage (default of promote --profile).
SOURCE_PROFILE = {"canary": "dev", "prod": "canary"}
#: --monte-carlo at most: the bootstrap keeps two floats a path (16 MB here); 10**11
#: paths asked for 745 GB at once and ended as an internal MemoryError.
MAX_PATHS = 1_000_000


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    html = "html"


class Stage(StrEnum):
    canary = "canary"
    prod = "prod"


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"perps-bot: {' '.join(message.split())}", err=True)
    raise typer.Exit(code)


def _source_db(db: Path | None, profile: str | None, default: str) -> Path:
    """The database a reading command opens: --db, else the profile's (either given before
    the subcommand too: cli.app hands them down)."""
    return db if db is not None else _profile_db(profile or default)


def _profile_db(profile: str) -> Path:
    return _profile_settings(profile).database_path


def _profile_settings(profile: str) -> "Settings":
    """A profile given by name or as a YAML path, loaded (one line and exit 2 if broken)."""
    from perps_bot.config import ConfigError, load_settings

    try:
        return load_settings(profile)
    except ConfigError as exc:
        _fail(str(exc))


def _open_existing(path: Path, *, read_only: bool) -> "RunStore":
    from perps_bot.storage import RunStore, StoreError

    if not path.exists():
        _fail(f"no database at {path}: run the bot first (or pass --db)")
    try:
        return RunStore(path, read_only=read_only)
    except StoreError as exc:
        _fail(str(exc))


# -- commands ----------------------------------------------------------------------------
def report_command(
    run: Annotated[
        str, typer.Option("--run", help="Run id, or 'latest' for the most recently created run.")
    ] = "latest",
    fmt: Annotated[
        ReportFormat,
        typer.Option(
            "--format",
            help="table: console tables; json: metrics and criteria, sorted keys; html: one"
            " self-contained page with charts and the trade list.",
        ),
    ] = ReportFormat.table,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the report to this file, not stdout.")
    ] = None,
    export: Annotated[
        Path | None,
        typer.Option(
            "--export", help="Also write trades.csv, equity.csv and orders.csv into this directory."
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", help="Read runs from this profile's database [default: dev]."),
    ] = None,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Database file to read (default: the profile's database)."),
    ] = None,
    portfolio: Annotated[
        str | None,
        typer.Option(
            "--portfolio",
            help="One portfolio of a run with several [default: the whole account].",
        ),
    ] = None,
    monte_carlo: Annotated[
        int | None,
        typer.Option(
            "--monte-carlo",
            min=1,
            max=MAX_PATHS,
            help="Also bootstrap the trade order N times: percentiles of return and drawdown.",
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Seed of the Monte Carlo (0 or more).")
    ] = 0,
) -> None:
    """Metrics, validation criteria and trades of a run (of one of its portfolios)."""
    from perps_bot.cli.evidence import evidence
    from perps_bot.metrics import ReportError, build_report, export_csv
    from perps_bot.storage import StoreError

    path = _source_db(db, profile, "dev")
    store = _open_existing(path, read_only=True)
    try:
        if portfolio is not None:
            run = store.portfolio_run(run, portfolio).run_id
        report, extra = evidence(store, build_report(store, run), monte_carlo, seed)
        if export is not None:
            export_csv(store, report.run.run_id, report.trades, export,
                       portfolios=bool(report.portfolios))  # fmt: skip
        _emit(report, fmt, out, extra)
    except (StoreError, ReportError) as exc:
        _fail(str(exc))
    finally:
        store.close()


def _emit(report: "Report", fmt: ReportFormat, out: Path | None, extra: dict[str, Any]) -> None:
    from perps_bot.cli.evidence import add_html, render_tables, to_json
    from perps_bot.cli.report_tables import render_table
    from perps_bot.metrics import render_html

    if fmt is ReportFormat.table:
        if out is None:
            render_table(report, _console())
            render_tables(extra, _console())
            return
        with _write(out) as fh:
            console = _console(fh)
            render_table(report, console)
            render_tables(extra, console)
        return
    if fmt is ReportFormat.json:
        text = to_json(report, extra) if extra else report.to_json()
    else:
        text = add_html(render_html(report), extra)
    if out is None:
        sys.stdout.write(text)
        return
    with _write(out) as fh:
        fh.write(text)


def _console(file: TextIO | None = None) -> "Console":
    """A console for the report's tables. Exit reasons, plan rationales and the like are
    free text: printed as they are, never read as rich markup ('[/]' raised) or emoji."""
    from rich.console import Console

    if file is None:
        return Console(markup=False, emoji=False)
    return Console(file=file, width=120, color_system=None, markup=False, emoji=False)


@contextlib.contextmanager
def _write(path: Path) -> Iterator[TextIO]:
    """`--out`: a path that cannot be written, or a full disk, is one line and exit 2."""
    from perps_bot.metrics import ReportError
    from perps_bot.metrics.export import written

    try:
        with written(path) as fh:
            yield fh
    except ReportError as exc:
        _fail(str(exc))


def promote_command(
    to: Annotated[
        Stage,
        typer.Option(
            "--to",
            help="Target stage. canary: needs a passing dev or backtest run. prod: needs a"
            " passing live run of the canary profile.",
        ),
    ],
    run: Annotated[
        str, typer.Option("--run", help="Run id, or 'latest' for the most recently created run.")
    ] = "latest",
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            help="Profile whose database holds the run (default: dev for --to canary,"
            " canary for --to prod).",
        ),
    ] = None,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Database file holding the run (overrides --profile)."),
    ] = None,
    target_db: Annotated[
        Path | None,
        typer.Option(
            "--target-db",
            help="Also record the promotion in this database (default: the target stage's"
            " profile database, which `perps-bot --profile prod` checks).",
        ),
    ] = None,
    portfolio: Annotated[
        str | None,
        typer.Option("--portfolio", help="The portfolio of a run with several to promote."),
    ] = None,
) -> None:
    """Check a run against its validation criteria, each held to the stricter of the run's
    own config and the target stage's profile, and record the promotion of its strategy."""
    from rich.console import Console

    from perps_bot.cli.report_tables import criteria_table
    from perps_bot.metrics import (
        PromotionRefused,
        ReportError,
        evaluate_promotion,
        record_promotion,
    )
    from perps_bot.storage import RunStore, StoreError

    stage = str(to)
    source = _source_db(db, profile, SOURCE_PROFILE[stage])
    target = target_db if target_db is not None else _profile_db(stage)
    store = _open_existing(source, read_only=False)
    try:
        if portfolio is not None:
            run = store.portfolio_run(run, portfolio).run_id
        try:
            report = evaluate_promotion(store, stage, run, gate=_gate(stage))
        except PromotionRefused as exc:
            if exc.report is not None:
                Console().print(criteria_table(exc.report))
            _fail(str(exc), code=1)
        stores = [store]
        extra: RunStore | None = None
        if _same_file(source, target):
            target = source
        else:
            extra = RunStore(target)
            stores.append(extra)
        try:
            record = record_promotion(report, stage, stores)
        finally:
            if extra is not None:
                extra.close()
        console = Console()
        console.print(criteria_table(report))
        console.print(
            f"promoted {record.strategy} (fingerprint {record.strategy_fingerprint}) to"
            f" {record.stage}: run {record.run_id}, promotion #{record.promotion_id}, all"
            f" {len(report.criteria)} criteria passed"
        )
        where = str(source) if target == source else f"{source} and {target}"
        console.print(f"recorded in {where}")
    except (StoreError, ReportError) as exc:
        _fail(str(exc))
    finally:
        store.close()


def _gate(stage: str) -> "PromotionConfig":
    """What the target stage's profile asks of the evidence it admits (SPEC 6, 13)."""
    from perps_bot.config import ConfigError, load_settings

    try:
        return load_settings(stage).promotion
    except ConfigError as exc:
        _fail(str(exc))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def register(app: typer.Typer) -> None:
    """Add `report` and `promote` to the main CLI app."""
    from perps_bot.metrics.definitions import help_epilog  # plain text: no numpy, no pydantic

    app.command(
        "report",
        help="Metrics, validation criteria and trades of a run.",
        epilog=help_epilog(),
    )(report_command)
    app.command(
        "promote",
        help="Promote a run's strategy to canary or prod if it passes the validation criteria.",
    )(promote_command)


__all__ = ["ReportFormat", "Stage", "register"]
