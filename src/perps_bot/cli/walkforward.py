"""`perps-bot walkforward`: optimise on rolling (or anchored) training windows, trade
the chosen parameters on the test window after each, and store the test windows as one
out-of-sample run of kind `walkforward` (research.walkforward), which `report` shows
window by window with its deflated Sharpe ratio and `promote --to canary` accepts."""

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from perps_bot.cli.optimize import (
    BalanceOpt,
    DataOpt,
    DbOpt,
    FillGapsOpt,
    FundingOpt,
    JobsOpt,
    JsonOpt,
    MarkOpt,
    NoPruneOpt,
    ObjectiveOpt,
    OrderSizeOpt,
    ParamOpt,
    ProfileOpt,
    RayOpt,
    SeedOpt,
    SpaceOpt,
    StorageOpt,
    StrategyOpt,
    SymbolOpt,
    TimeframeOpt,
    TimerangeOpt,
    progress_printer,
    study_flags,
    write_json,
)
from perps_bot.cli.option_types import LlmCacheOnlyOpt

if TYPE_CHECKING:
    from rich.console import Console

    from perps_bot.research.walkforward import WindowPlan


def walkforward(
    data: DataOpt,
    symbol: SymbolOpt,
    strategy: StrategyOpt,
    space: SpaceOpt,
    train: Annotated[str, typer.Option("--train", help="Training window, e.g. 30d.")],
    test: Annotated[str, typer.Option("--test", help="Test window after each, e.g. 7d.")],
    step: Annotated[
        str | None, typer.Option("--step", help="Window step [default: --test].")
    ] = None,
    anchored: Annotated[
        bool, typer.Option("--anchored", help="Every training window starts at the data's start.")
    ] = False,
    trials: Annotated[
        int,
        typer.Option(
            "--trials",
            help="Trials to add to each window's study: the same windows again (same data,"
            " --train, --test, --step) continue their studies, which then hold more.",
        ),
    ] = 50,
    funding: FundingOpt = None,
    mark: MarkOpt = None,
    param: ParamOpt = None,
    objective: ObjectiveOpt = "sharpe",
    jobs: JobsOpt = 0,
    ray: RayOpt = None,
    study: Annotated[
        str | None, typer.Option("--study", help="Prefix of the windows' study names.")
    ] = None,
    storage: StorageOpt = None,
    no_prune: NoPruneOpt = False,
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
    """Walk-forward analysis: optimise per training window, test out of sample."""
    from perps_bot import compiled

    compiled.activate()  # a simulation only: the compiled hot path, where it is built
    from rich.console import Console

    from perps_bot.cli.market_data import prepare_run
    from perps_bot.cli.options import flag_duration
    from perps_bot.config import ConfigError
    from perps_bot.domain import iso_utc
    from perps_bot.feeds.bars import strategy_bars
    from perps_bot.research.backends import make_backend, ray_session
    from perps_bot.research.objectives import Objectives
    from perps_bot.research.study import (
        StudySpec,
        candles_about,
        data_about,
        setup_about,
    )
    from perps_bot.research.trial import TrialJob
    from perps_bot.research.walkforward import optimise_window, plan_windows, run_out_of_sample

    if trials < 1 or jobs < 0:
        raise ConfigError("--trials must be at least 1, -j at least 0")
    space_dists = study_flags(space, strategy, param, output)
    objectives = Objectives.parse(objective)
    train_ms, test_ms = flag_duration("--train", train), flag_duration("--test", test)
    step_ms = None if step is None else flag_duration("--step", step)
    dataset, settings = prepare_run(
        profile=profile, symbol=symbol, data=data, funding=funding, mark=mark, param=param,
        fill_gaps=fill_gaps, timerange=timerange, strategy=strategy, seed=seed, db=db,
        timeframe=timeframe, order_size=order_size, initial_balance=initial_balance,
        record="metrics", llm_cache_only=llm_cache_only,
    )  # fmt: skip
    bars = strategy_bars(dataset.feed(), settings.strategy.timeframe)
    plans = plan_windows(
        dataset.start_ts, dataset.end_ts, train=train_ms, test=test_ms, step=step_ms,
        anchored=anchored, bar=bars.length, bar_edge=bars.edge, after=dataset.interval_ms,
    )  # fmt: skip
    console = Console()
    workers = jobs or (os.cpu_count() or 1)
    prefix = study or f"wf-{strategy}-{'+'.join(dataset.names)}-{objectives}"
    console.print(f"walk-forward {strategy} on {', '.join(dataset.names)}: {len(plans)} windows"
                  f" ({'anchored' if anchored else 'rolling'}), {trials} trials added to each"
                  f" window's study, by {objectives}", highlight=False, soft_wrap=True)  # fmt: skip
    job = TrialJob(settings)
    windows = []
    with ray_session(ray, jobs):
        for plan in plans:
            spec = StudySpec(
                name=_window_study(prefix, plan, named=study is not None),
                storage=storage or Path(settings.run.data_dir) / "studies.sqlite",
                objectives=objectives, space=space_dists, trials=trials, seed=seed + plan.index,
                prune=not no_prune, about={
                    "strategy": strategy, "objective": str(objectives), "symbols": ",".join(symbol),
                    "candles": candles_about(plan.train_start, plan.train_end),
                    "data": data_about(dataset.between(plan.train_start, plan.train_end)),
                    **setup_about(settings, space_dists)},
            )  # fmt: skip
            record = optimise_window(
                plan, job, dataset, spec,
                lambda j, d: make_backend(j, d, jobs=workers if ray is None else jobs, ray=ray),
                progress_printer(console, trials, quiet=True),
            )  # fmt: skip
            windows.append(record)
            console.print(f"window {plan.index}: train {iso_utc(plan.train_start)[:16]} ->"
                          f" {iso_utc(plan.train_end)[:16]}, test -> {iso_utc(plan.test_end)[:16]}:"
                          f" {record.params} ({record.in_sample['tried']} trials tried in its"
                          f" study {spec.name})", highlight=False, soft_wrap=True)  # fmt: skip
    result = run_out_of_sample(settings, dataset, windows, progress=False, console=console)
    _show(result.run_id, result.db_path, console, output)


def _show(run_id: str, db: Path, console: "Console", output: Path | None) -> None:
    """The stored run's walk-forward section, as `perps-bot report` shows it."""
    from perps_bot.cli.evidence import evidence, render_tables
    from perps_bot.metrics import build_report
    from perps_bot.storage import RunStore

    with RunStore(db, read_only=True) as store:
        _, extra = evidence(store, build_report(store, run_id), None, 0)
    render_tables(extra, console)
    console.print(f"out-of-sample run {run_id} stored (db {db}): perps-bot report --run {run_id}",
                  highlight=False, soft_wrap=True)  # fmt: skip
    if output is not None:
        section = extra.get("walkforward", {}) | {"run_id": run_id}
        write_json(output, section)


def register(app: typer.Typer) -> None:
    app.command("walkforward")(walkforward)


def _window_study(prefix: str, plan: "WindowPlan", *, named: bool) -> str:
    """`<prefix>-w<k>`; a default name also says the window's training range, so a
    rerun with other windows (another --train, --step or --timerange) makes new studies
    where the same windows continue theirs. A study named with --study that was made on
    other training candles is refused (see StudySpec.about)."""
    name = f"{prefix}-w{plan.index}"
    if named:
        return name
    return f"{name}-{_minute(plan.train_start)}-{_minute(plan.train_end)}"


def _minute(ts: int) -> str:
    """20240101T0000 for 2024-01-01 00:00 UTC."""
    from perps_bot.domain import iso_utc

    return iso_utc(ts)[:16].replace("-", "").replace(":", "")
