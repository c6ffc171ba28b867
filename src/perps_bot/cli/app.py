"""The `perps-bot` command. The bare command runs the bot; subcommands report, promote,
backtest, emulator and config do the rest.

Every anticipated failure (bad profile, bad flag, unknown strategy, missing data,
exchange setup) ends as ONE line on stderr and exit code 2: `main()` runs click in
non-standalone mode so usage errors can be reformatted instead of boxed.
"""

import atexit
import gc
import itertools
import os
import sys
from functools import cache
from pathlib import Path
from typing import Annotated

import typer

from perps_bot import __version__, compiled
from perps_bot.cli import config_cmd
from perps_bot.cli.option_types import LlmCacheOnlyOpt

app = typer.Typer(
    name="perps-bot",
    help="Profile-driven trading bot for perpetual futures: dev (mock exchange) -> canary -> prod.",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"perps-bot {__version__} ({compiled.availability()})")
        raise typer.Exit(0)


@app.callback()
def run(
    ctx: typer.Context,
    profile: Annotated[
        str, typer.Option(help="Profile: dev | canary | prod, or a path to a profile YAML.")
    ] = "dev",
    dev_fast: Annotated[
        bool,
        typer.Option("--dev-fast", help="Run on the simulated clock (mock broker): no sleeping."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Real market data, fills simulated on the real book.")
    ] = False,
    seed: Annotated[int | None, typer.Option(help="Random seed (mock prices, fills).")] = None,
    duration: Annotated[
        str | None,
        typer.Option(help="7d | 12h | 90m: simulated time under --dev-fast, wall time otherwise."),
    ] = None,
    symbols: Annotated[
        str | None, typer.Option(help="Comma-separated, e.g. BTC-PERP,ETH-PERP.")
    ] = None,
    strategy: Annotated[
        list[str] | None,
        typer.Option(
            help="Built-in name (sma_cross, ...) or package.module:Class; repeat it to run"
            " several side by side, each its own portfolio (equal shares of the balance)."
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            help="Strategy parameter key=value (repeatable); with several portfolios"
            " ID.key=value (ID: the portfolio, e.g. the strategy's name)."
        ),
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="DEBUG | INFO | WARNING | ERROR.")] = None,
    http_port: Annotated[
        int | None,
        typer.Option(help="Serve the run's dashboard (/) and read API (/api/...) on this port."),
    ] = None,
    db: Annotated[
        str | None, typer.Option(help="SQLite path (default data/perps_bot.<profile>.sqlite).")
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="[RUN_ID]",
            help="Continue a killed or interrupted paper run from its last checkpoint"
            " (without RUN_ID: the latest of the profile), under its own run id.",
        ),
    ] = None,
    llm_cache_only: LlmCacheOnlyOpt = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Run the bot with a profile (the bare command). Ctrl-C stops cleanly with state flushed."""
    if ctx.invoked_subcommand is not None:
        _hand_down(ctx)
        return
    # the product loads only when the bot runs: `--version`, `--help` and every
    # subcommand pay for what they use (tests/architecture/test_startup_imports.py)
    from rich.console import Console

    from perps_bot.cli.options import check_symbols_flag, run_overrides
    from perps_bot.config import load_settings

    overrides = run_overrides(
        dev_fast=dev_fast,
        dry_run=dry_run,
        seed=seed,
        duration=duration,
        symbols=symbols,
        strategy=strategy,
        params=param,
        log_level=log_level,
        http_port=http_port,
        db=db,
        llm_cache_only=llm_cache_only,
    )
    settings = load_settings(profile, overrides)
    check_symbols_flag(settings, symbols)
    from perps_bot.orchestrator.runner import Interrupted, run_bot_sync

    console = Console()
    attach = None
    if settings.run.http_port is not None:
        from perps_bot.server import show_run  # aiohttp's server only when serving

        attach = show_run(settings.run.http_port)
    try:
        result = run_bot_sync(settings, console=console, resume=resume, attach=attach)
    except Interrupted as exc:
        sys.stderr.write(f"perps-bot: interrupted ({exc})\n")
        raise typer.Exit(130) from None
    console.print(
        f"run {result.run_id} {result.status}: {result.fills} fills, "
        f"equity {result.final_equity:,.2f}  (db {result.db_path})"
    )
    console.print(result.headline, highlight=False)
    if result.status == "failed":
        sys.stderr.write(
            f"perps-bot: run {result.run_id} failed: {_one_line(str(result.detail))}\n"
        )
        raise typer.Exit(1)
    if result.status == "interrupted":
        raise typer.Exit(130)


_HANDED_DOWN = ("profile", "db")  # the same meaning in every subcommand that has them


def _hand_down(ctx: typer.Context) -> None:
    """Options given before a subcommand (`perps-bot --profile canary runs list`): --profile
    and --db become the defaults of the subcommand's own (its explicit ones still win);
    any other, or one the subcommand does not have, is refused. Before, only report,
    promote and resume-trading read them: the rest dropped them silently, so `runs list`
    listed dev's runs and `backtest` ran with dev's fees, risk and database."""
    given = {
        name: ctx.params[name]
        for name in ctx.params
        if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
    }
    name = ctx.invoked_subcommand
    group = ctx.command
    if not given or name is None or not isinstance(group, typer.core.TyperGroup):
        return
    command = group.get_command(ctx, name)
    for option in given:
        if option not in _HANDED_DOWN or not _every_leaf_takes(command, option):
            flag = "--" + option.replace("_", "-")
            typer.echo(
                f"perps-bot: {flag} before '{name}' is not one of its options: give it after"
                f" the subcommand (perps-bot {name} --help)",
                err=True,
            )
            raise typer.Exit(2)
    ctx.default_map = {name: _defaults_for(command, given)}


def _every_leaf_takes(command: object, option: str) -> bool:
    """Whether every command under `command` (itself, when it has no subcommands) has
    `option`: the sub-subcommand is not known yet when the main command runs."""
    subcommands = getattr(command, "commands", None)
    if isinstance(subcommands, dict):
        return all(_every_leaf_takes(sub, option) for sub in subcommands.values())
    return any(param.name == option for param in getattr(command, "params", ()))


def _defaults_for(command: object, values: dict[str, object]) -> dict[str, object]:
    """click's default map for `command`: nested by subcommand name for a group."""
    subcommands = getattr(command, "commands", None)
    if isinstance(subcommands, dict):
        return {name: _defaults_for(sub, values) for name, sub in subcommands.items()}
    return dict(values)


def _register_subcommands() -> None:
    config_cmd.register(app)
    for module in (
        "report",
        "runs",
        "backtest",
        "optimize",
        "walkforward",
        "data",
        "emulator",
        "trading",
        "replay",
        "drift",
        "serve",
    ):
        try:
            mod = __import__(f"perps_bot.cli.{module}", fromlist=["register"])
        except ModuleNotFoundError as exc:  # pragma: no cover - only while a module is absent
            if exc.name != f"perps_bot.cli.{module}":
                raise
            continue
        mod.register(app)


_register_subcommands()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _is_usage_error(exc: BaseException) -> bool:
    """typer vendors click privately; its usage errors are recognised by their interface."""
    return hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int)


def _is_perps_bot_error(exc: BaseException) -> bool:
    """An anticipated failure (domain.PerpsBotError). The domain is not imported for
    `--version` or `--help`: while it is not loaded, none of its errors was raised."""
    errors = sys.modules.get("perps_bot.domain.errors")
    return errors is not None and isinstance(exc, errors.PerpsBotError)


def _internal_error(exc: BaseException) -> None:
    """An unanticipated failure: one line for the user, the traceback for the log file."""
    import logging
    import traceback
    from pathlib import Path

    log_dir = Path("logs")
    try:
        log_dir.mkdir(exist_ok=True)
        with (log_dir / "perps_bot.log").open("a", encoding="utf-8") as handle:
            handle.write("CRITICAL internal error\n" + traceback.format_exc())
        where = f" (traceback in {log_dir / 'perps_bot.log'})"
    except OSError:
        where = ""
    logging.shutdown()
    sys.stderr.write(
        f"perps-bot: internal error: {type(exc).__name__}: {_one_line(str(exc))}{where}\n"
    )
    sys.exit(1)


def _optional_value(args: list[str], option: str, default: str) -> list[str]:
    """`--resume` may come without its value (typer's options always take one): give it
    `default` when the next argument is missing or is another option."""
    out: list[str] = []
    for i, arg in enumerate(args):
        out.append(arg)
        if arg == option and (i + 1 == len(args) or args[i + 1].startswith("-")):
            out.append(default)
    return out


#: the collector's thresholds while a command starts and runs (see `main`)
_START_GC = (50_000, 20, 100)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point.

    numpy's OpenBLAS starts a thread per core when numpy is imported, and the threads
    spin for a while before they sleep; the bot does no matrix work, so on a 2-core
    machine they only take CPU from the run (about 0.1 s of each command, and of each
    optimisation worker). One thread, unless the environment says otherwise; children
    (workers, Ray) inherit it.

    The command's imports (pydantic, numpy, pyarrow, the product) allocate hundreds of
    thousands of long-lived objects: at the default thresholds the cyclic collector
    traverses them again and again, a full pass included (about 0.5% of a 100k-candle
    backtest's instructions). The young generation is collected every `_START_GC[0]`
    net allocations instead (as during a run: orchestrator.run_process); the previous
    thresholds are restored on the way out (tests call `main` in their own process).

    `argv` None: `main` is the process's own entry (the console script, `python -m
    perps_bot`), and its exit skips the interpreter's last collection
    (`_skip_exit_collection`)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if argv is None:
        _skip_exit_collection()
        _read_ahead(sys.argv[1:])
    thresholds = gc.get_threshold()
    gc.set_threshold(*_START_GC)
    try:
        _main(argv)
    finally:
        gc.set_threshold(*thresholds)


def _read_ahead(args: list[str]) -> None:
    """`perps-bot backtest ... --data FILE`: the data files start being read now, before
    the options are parsed (feeds.prefetch), so that the read (a 500k-candle CSV: about
    0.12 s) is done by the time the command needs it instead of being waited for. The
    compiled hot path is turned on first, as the command does: the read imports domain
    modules. Only the command's own `--data` options are read ahead; whatever the
    options turn out to say, the command reads its files as before (a file read ahead
    is used only if it is one of them, unchanged)."""
    if not args or args[0] != "backtest":
        return
    paths = [value for option, value in itertools.pairwise(args) if option == "--data"]
    paths += [arg.removeprefix("--data=") for arg in args if arg.startswith("--data=")]
    if paths:
        compiled.activate()
        from perps_bot.feeds.prefetch import prefetch

        prefetch(Path(path) for path in paths)


@cache
def _skip_exit_collection() -> None:
    """Freeze every object at the process's exit, so the interpreter's shutdown does not
    collect them.

    Why: on its way out CPython collects every container object once more and then
    tears the modules' reference cycles down one by one (pydantic's, numpy's, pyarrow's,
    the product's): about 0.1 s of every command (a 2,000-candle backtest: 0.13 s of
    its 0.65 s after its last line), spent freeing memory the operating system takes
    back at once. Frozen objects (`gc.freeze`) are left out of that pass. What a command
    writes is closed by the command before it returns (the run store, the journal, the
    exports) or by the exit handlers that still run (logging flushes and closes its
    handlers): only finalizers of objects left in reference cycles at exit no longer
    run, and CPython never promised to run those. Registered once, only for the
    process's own command (`main` with no argv): a test process calling `main` keeps its
    collector."""
    atexit.register(gc.freeze)


def _main(argv: list[str] | None) -> None:
    command = typer.main.get_command(app)
    args = _optional_value(list(sys.argv[1:] if argv is None else argv), "--resume", "latest")
    try:
        code = command.main(args=args, prog_name="perps-bot", standalone_mode=False)
    except typer.Abort:
        sys.stderr.write("perps-bot: aborted\n")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.stderr.write("perps-bot: interrupted\n")
        sys.exit(130)
    except Exception as exc:
        if _is_perps_bot_error(exc):
            sys.stderr.write(f"perps-bot: {_one_line(str(exc))}\n")
            sys.exit(2)
        if not _is_usage_error(exc):
            _internal_error(exc)
        message = _one_line(exc.format_message())  # type: ignore[attr-defined]
        sys.stderr.write(f"perps-bot: error: {message} (try --help)\n")
        sys.exit(int(exc.exit_code) or 2)  # type: ignore[attr-defined]
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
