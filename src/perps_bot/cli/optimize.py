"""`perps-bot optimize`: search a strategy's parameters with Optuna (SPEC 13).

Each trial is a full backtest through the one orchestrator (research.trial) over
candles loaded once per worker; the study lives in SQLite (`--storage`, default
`<run.data_dir>/studies.sqlite`), so running the command again with the same
`--study` adds trials to it. Local worker processes by default (`-j N`), a Ray
cluster with `--ray auto|ray://HOST:PORT|HOST:PORT`. At the end the best trial's
backtest is run once more and stored like any backtest (`report`, `promote`).
"""

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from perps_bot.cli.option_types import LlmCacheOnlyOpt

if TYPE_CHECKING:  # Optuna, the research layer and the product load only when this runs
    import optuna
    from rich.console import Console

    from perps_bot.config import Settings
    from perps_bot.feeds.dataset import Dataset
    from perps_bot.research.objectives import Objectives
    from perps_bot.research.space import Space
    from perps_bot.research.trial import TrialJob, TrialOutcome

DataOpt = Annotated[
    list[Path], typer.Option("--data", help="Candle file per --symbol (repeatable).")
]
SymbolOpt = Annotated[
    list[str], typer.Option("--symbol", help="Symbol, e.g. BTC-PERP (repeatable).")
]
FundingOpt = Annotated[
    list[Path] | None, typer.Option("--funding", help="Funding-rate file per --symbol.")
]
MarkOpt = Annotated[list[Path] | None, typer.Option("--mark", help="Mark-price file per --symbol.")]
StrategyOpt = Annotated[
    str, typer.Option("--strategy", help="Built-in name or package.module:Class.")
]
SpaceOpt = Annotated[
    list[str],
    typer.Option(
        "--space",
        help="NAME=int:LOW:HIGH[:STEP] | float:LOW:HIGH[:STEP] | log:LOW:HIGH | choice:A,B,..."
        " (repeatable).",
    ),
]
ParamOpt = Annotated[
    list[str] | None, typer.Option("--param", help="Fixed strategy parameter key=value.")
]
ObjectiveOpt = Annotated[
    str,
    typer.Option(
        "--objective",
        help="sharpe, sortino, calmar, total_pnl, profit_factor, return_pct, or a pair such as"
        " sharpe,max_drawdown (Pareto front).",
    ),
]
JobsOpt = Annotated[
    int, typer.Option("-j", "--jobs", help="Worker processes (Ray: actors) [default: cores].")
]
RayOpt = Annotated[
    str | None,
    typer.Option(
        "--ray", help="auto (start a local Ray) or the address of a cluster (ray://HOST:PORT)."
    ),
]
ProfileOpt = Annotated[str, typer.Option("--profile", help="Profile for fees, account, risk.")]
TimerangeOpt = Annotated[
    str | None, typer.Option("--timerange", help="Only the candles of START-END, e.g. 20240101-.")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the sampler and of the runs.")]
TimeframeOpt = Annotated[
    str | None, typer.Option("--timeframe", help="Bar size the strategy sees, e.g. 15m.")
]
OrderSizeOpt = Annotated[
    float | None, typer.Option("--order-size", help="Order size per symbol (base units).")
]
BalanceOpt = Annotated[float | None, typer.Option("--initial-balance", help="Starting balance.")]
DbOpt = Annotated[str | None, typer.Option("--db", help="Database of the stored best run.")]
NoPruneOpt = Annotated[bool, typer.Option("--no-prune", help="Run every trial to its end.")]
JsonOpt = Annotated[
    Path | None, typer.Option("--json", help="Also write the results as JSON here.")
]
FillGapsOpt = Annotated[bool, typer.Option("--fill-gaps", help="Repair gaps in the data.")]
StorageOpt = Annotated[
    Path | None,
    typer.Option("--storage", help="Study SQLite file [default: <data_dir>/studies.sqlite]."),
]


def optimize(
    data: DataOpt,
    symbol: SymbolOpt,
    strategy: StrategyOpt,
    space: SpaceOpt,
    funding: FundingOpt = None,
    mark: MarkOpt = None,
    param: ParamOpt = None,
    objective: ObjectiveOpt = "sharpe",
    trials: Annotated[int, typer.Option("--trials", help="Trials to add to the study.")] = 100,
    jobs: JobsOpt = 0,
    ray: RayOpt = None,
    study: Annotated[
        str | None, typer.Option("--study", help="Study name (again: continue the study).")
    ] = None,
    storage: StorageOpt = None,
    top: Annotated[int, typer.Option("--top", help="Trials in the results table.")] = 10,
    no_prune: NoPruneOpt = False,
    no_store: Annotated[
        bool, typer.Option("--no-store", help="Do not store the best trial's backtest.")
    ] = False,
    output: JsonOpt = None,
    profile: ProfileOpt = "dev",
    timerange: TimerangeOpt = None,
    seed: SeedOpt = 42,
    timeframe: TimeframeOpt = None,
    order_size: OrderSizeOpt = None,
    initial_balance: BalanceOpt = None,
    db: DbOpt = None,
    fill_gaps: FillGapsOpt = False,
    llm_cache_only: LlmCacheOnlyOpt = False,
) -> None:
    """Optimise a strategy's parameters: each trial a full backtest, the study in SQLite."""
    from perps_bot import compiled

    compiled.activate()  # a simulation only: the compiled hot path, where it is built
    from rich.console import Console

    from perps_bot.cli.market_data import prepare_run
    from perps_bot.config import ConfigError
    from perps_bot.research.backends import make_backend
    from perps_bot.research.objectives import Objectives
    from perps_bot.research.space import describe
    from perps_bot.research.study import (
        StudySpec,
        candles_about,
        data_about,
        run_study,
        setup_about,
    )
    from perps_bot.research.summary import render, summary
    from perps_bot.research.trial import TrialJob

    if trials < 1 or top < 1 or jobs < 0:
        raise ConfigError("--trials and --top must be at least 1, -j at least 0")
    space_dists = study_flags(space, strategy, param, output)
    objectives = Objectives.parse(objective)
    dataset, settings = prepare_run(
        profile=profile, symbol=symbol, data=data, funding=funding, mark=mark, param=param,
        fill_gaps=fill_gaps, timerange=timerange, strategy=strategy, seed=seed, db=db,
        timeframe=timeframe, order_size=order_size, initial_balance=initial_balance,
        record="metrics", llm_cache_only=llm_cache_only,
    )  # fmt: skip
    spec = StudySpec(
        name=study or _default_name(strategy, dataset, objectives),
        storage=storage or Path(settings.run.data_dir) / "studies.sqlite",
        objectives=objectives,
        space=space_dists,
        trials=trials,
        seed=seed,
        prune=not no_prune,
        about={"strategy": strategy, "objective": str(objectives), "symbols": ",".join(symbol),
               "candles": candles_about(dataset.start_ts, dataset.end_ts),
               "data": data_about(dataset),
               **setup_about(settings, space_dists)},
    )  # fmt: skip
    console = Console()
    workers = jobs or (os.cpu_count() or 1)
    console.print(
        f"optimize {strategy} on {', '.join(dataset.names)} ({len(dataset):,} candles):"
        f" {describe(space_dists)}; {trials} trials by {objectives}, study {spec.name!r}"
        f" in {spec.storage}, {'ray ' + ray if ray else f'{workers} local workers'}",
        highlight=False,
        soft_wrap=True,
    )
    job = TrialJob(settings)
    backend = make_backend(job, dataset, jobs=workers if ray is None else jobs, ray=ray)
    try:
        run = run_study(spec, backend, on_trial=progress_printer(console, trials))
    finally:
        backend.close()
    console.print(
        f"{len(run.outcomes)} trials in {run.seconds:.1f} s: {run.trials_per_minute:.1f}"
        " trials per minute",
        highlight=False,
    )
    _refuse_if_every_trial_failed(run.outcomes)
    days = (dataset.end_ts - dataset.start_ts) / 86_400_000
    results = summary(run.study, top, sharpe_period=settings.promotion.sharpe_period, days=days)
    render(results, console)
    if not no_store:
        results["best_run"] = _store_best(run.study, job, dataset, settings, console)
    if output is not None:
        write_json(output, results)


def study_flags(
    space: list[str], strategy: str, param: list[str] | None, output: Path | None
) -> "Space":
    """The parsed `--space`, once it fits the strategy and `--param`, and a `--json`
    path that can be written: all checked before the first trial, not after the last."""
    from perps_bot.cli.options import parse_params
    from perps_bot.config import ConfigError
    from perps_bot.domain import short_path
    from perps_bot.research.space import check_space, parse_space

    parsed = parse_space(space)
    check_space(parsed, strategy, set(parse_params(param)))
    if output is not None and (output.is_dir() or not output.parent.is_dir()):
        what = "a folder, not a file" if output.is_dir() else "its folder does not exist"
        raise ConfigError(f"bad --json {short_path(output)}: {what}")
    return parsed


def _refuse_if_every_trial_failed(outcomes: "list[TrialOutcome]") -> None:
    """A search whose every trial failed (say a `fast` range above `slow`) found
    nothing: one line with the first reason and exit 2, not an empty table and exit 0.
    The failed trials stay in the study, as Optuna recorded them."""
    from perps_bot.config import ConfigError

    if outcomes and all(o.error is not None for o in outcomes):
        raise ConfigError(
            f"every one of the {len(outcomes)} trials failed; the first: {outcomes[0].error}"
        )


def write_json(path: Path, data: object) -> None:
    """The `--json` results; a path that cannot be written is one line (exit 2)."""
    from perps_bot.config import ConfigError
    from perps_bot.domain import short_path

    try:
        path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot write {short_path(path)}: {exc.strerror or exc}") from None


def _default_name(strategy: str, dataset: "Dataset", objectives: "Objectives") -> str:
    return f"{strategy}-{'+'.join(dataset.names)}-{objectives}"


def progress_printer(
    console: "Console", total: int, *, quiet: bool = False
) -> Callable[["TrialOutcome"], None]:
    """A line per finished trial (quiet: only failures, one line per window instead)."""
    from perps_bot.metrics.formatting import denials_text

    seen = 0

    def show(outcome: "TrialOutcome") -> None:
        nonlocal seen
        seen += 1
        if outcome.error is None and quiet:
            return
        if outcome.pruned:
            state = "pruned"
        else:
            metrics = outcome.metrics or {}
            state = (
                f"sharpe {metrics.get('sharpe')} total_pnl {metrics.get('total_pnl')}"
                f" trades {metrics.get('trades')}"
            )
            denials = metrics.get("denials") or {}
            if denials:  # a trial that never traded says why (an order size under the minimum)
                state += f" denied {denials_text(denials)}"
        if outcome.error is not None:  # with what the run did, when it ran (an undefined objective)
            state = f"failed: {outcome.error}" + (f"; {state}" if outcome.metrics else "")
        console.print(
            f"[{seen}/{total}] trial {outcome.number} {outcome.params}: {state}"
            f" ({outcome.seconds:.2f} s)",
            highlight=False,
            soft_wrap=True,
        )

    return show


def _store_best(
    study: "optuna.Study",
    job: "TrialJob",
    dataset: "Dataset",
    settings: "Settings",
    console: "Console",
) -> str | None:
    from perps_bot.research.study import best_trials
    from perps_bot.research.trial import run_stored

    best = best_trials(study)
    if not best:
        console.print("no completed trial: nothing to store")
        return None
    trial = best[0]
    result = run_stored(job, dataset, dict(trial.params), progress=False, console=console)
    study.set_user_attr("best_run", result.run_id)
    console.print(
        f"best trial {trial.number} stored as run {result.run_id} (db {result.db_path}):"
        " perps-bot report --run " + result.run_id,
        highlight=False,
        soft_wrap=True,
    )
    return result.run_id


def register(app: typer.Typer) -> None:
    app.command("optimize")(optimize)
