"""`perps-bot backtest`: replay a historical candle file through the bot (SPEC 7).

There is no separate backtest engine. This command loads the files into a
CandleFeed and hands it to the same runner as `perps-bot --profile dev
--dev-fast`: the mock venue fills orders on each candle's documented price path,
and the strategy, risk gate, ledger, storage and reports are the dev objects.
A backtest run is stored with kind `backtest` next to the dev runs.

Settings layering is the usual one (defaults < profile < PERPS_BOT__* env <
flags). The run's mode is `backtest` (orchestrator.modes: simulated clock, paper
venue, instruments from the profile, whatever broker the profile names); the clock
starts at the first candle (`mock.start`) and the data decides when the run ends.
Strategy parameters from the profile apply only when `--strategy` names the
profile's own strategy (config.load_settings); otherwise only the `--param` values
given here are used.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from perps_bot.cli.option_types import LlmCacheOnlyOpt

if TYPE_CHECKING:  # the product loads when the command runs, not at the CLI's start-up
    from perps_bot.config import Settings
    from perps_bot.feeds import Feed
    from perps_bot.feeds.historical import CandleFeed
    from perps_bot.feeds.merged import MergedCandleFeed


def backtest(
    data: Annotated[
        list[Path],
        typer.Option(
            "--data",
            help="Candles: .csv (timestamp,open,high,low,close,volume), .feather or .json.gz;"
            " one per --symbol, in the same order (repeatable).",
        ),
    ],
    symbol: Annotated[
        list[str],
        typer.Option("--symbol", help="Symbol name, e.g. BTC-PERP (repeatable: multi-symbol)."),
    ],
    strategy: Annotated[
        list[str],
        typer.Option(
            "--strategy",
            help="Built-in name (sma_cross, ...) or package.module:Class; repeat it to run"
            " several side by side (each its own portfolio, --param ID.key=value).",
        ),
    ],
    funding: Annotated[
        list[Path] | None,
        typer.Option(
            "--funding",
            help="Funding-rate file (rate in `open`); times are floored to the funding interval."
            " Without it, funding settles at account.default_funding_rate. One per --symbol.",
        ),
    ] = None,
    mark: Annotated[
        list[Path] | None,
        typer.Option(
            "--mark", help="Mark-price candles (OHLC) in any data format; one per --symbol."
        ),
    ] = None,
    timerange: Annotated[
        str | None,
        typer.Option(
            "--timerange", help="Only the candles of START-END (UTC), e.g. 20240101-20240301."
        ),
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="Strategy parameter key=value (repeatable).")
    ] = None,
    profile: Annotated[
        str, typer.Option("--profile", help="Profile for fees, account, risk and mock venue.")
    ] = "dev",
    fill_gaps: Annotated[
        bool,
        typer.Option(
            "--fill-gaps",
            help="Repair gaps (flat candles at the previous close, zero volume) and drop exact"
            " duplicate rows instead of rejecting the file.",
        ),
    ] = False,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the fill simulation.")] = None,
    initial_balance: Annotated[
        float | None, typer.Option("--initial-balance", help="Starting wallet balance.")
    ] = None,
    order_size: Annotated[
        float | None,
        typer.Option("--order-size", help="Strategy order size for the symbol (base units)."),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", help="SQLite path (default: the profile's database)."),
    ] = None,
    timeframe: Annotated[
        str | None,
        typer.Option(
            "--timeframe",
            help="Bar size the strategy sees (strategy.timeframe), e.g. 15m: longer than the"
            " candles aggregates them into bars; not longer, the strategy sees the candles.",
        ),
    ] = None,
    no_progress: Annotated[
        bool, typer.Option("--no-progress", help="Do not show the progress view.")
    ] = False,
    llm_cache_only: LlmCacheOnlyOpt = False,
) -> None:
    """Replay historical candles (and funding / mark files) through the bot."""
    from perps_bot import compiled

    compiled.activate()  # a simulation only: the compiled hot path, where it is built
    from perps_bot.feeds.prefetch import prefetch

    prefetch(data)  # the files are parsed while the engine is imported (feeds.prefetch)
    from rich.console import Console

    from perps_bot.cli.market_data import prepare_run
    from perps_bot.orchestrator.preflight import profile_catalog
    from perps_bot.orchestrator.runner import Interrupted, run_bot_sync

    console = Console()
    try:
        dataset, settings = prepare_run(
            profile=profile, symbol=symbol, data=data, funding=funding, mark=mark, param=param,
            fill_gaps=fill_gaps, timerange=timerange, strategy=strategy, seed=seed, db=db,
            timeframe=timeframe, order_size=order_size, initial_balance=initial_balance,
            llm_cache_only=llm_cache_only,
        )  # fmt: skip
        profile_catalog(settings)  # a symbol with no instrument: refused before it is shown
        feed = dataset.feed()
        console.print(describe_feeds(feed, settings), highlight=False, soft_wrap=True)
        result = run_bot_sync(settings, feed=feed, progress=not no_progress, console=console)
    except Interrupted as exc:
        typer.echo(f"perps-bot: interrupted ({exc})", err=True)
        raise typer.Exit(130) from None
    console.print(
        f"run {result.run_id} {result.status}: {result.fills} fills, "
        f"equity {result.final_equity:,.2f}  (db {result.db_path})",
        highlight=False,
        soft_wrap=True,
    )
    console.print(result.headline, highlight=False, soft_wrap=True)
    if result.status == "failed":
        raise typer.Exit(1)
    if result.status == "interrupted":
        raise typer.Exit(130)


def describe_feeds(feed: "Feed", settings: "Settings") -> str:
    """One line per symbol saying what is replayed (see describe_feed)."""
    from perps_bot.feeds.historical import CandleFeed
    from perps_bot.feeds.merged import MergedCandleFeed

    if isinstance(feed, MergedCandleFeed):
        lines = [describe_feed(f, settings) for f in feed.feeds]
        overlap = feed.overlap
        if overlap is not None and overlap != (feed.start_ts, feed.end_ts):
            lines.append(_partial_overlap(feed, *overlap))
        return "\n".join(lines)
    assert isinstance(feed, CandleFeed)
    return describe_feed(feed, settings)


def _partial_overlap(feed: "MergedCandleFeed", start: int, end: int) -> str:
    """The one line of a multi-symbol backtest whose files cover different times."""
    from perps_bot.domain import format_duration, iso_utc

    return (
        f"WARNING: the symbols' candles overlap only {iso_utc(start)} -> {iso_utc(end)}"
        f" ({format_duration(end - start)} of the run's"
        f" {format_duration(feed.end_ts - feed.start_ts)}): outside it not every symbol"
        " trades, and the report's span and days count the whole run"
    )


def describe_feed(feed: "CandleFeed", settings: "Settings") -> str:
    """One line saying what is replayed, including every repair and assumption."""
    from perps_bot.domain import format_duration, iso_utc

    candles = feed.candles
    parts = [
        f"backtest {feed.symbol}: {feed.total} {format_duration(feed.interval_ms)} candles"
        f" {iso_utc(feed.start_ts)} -> {iso_utc(feed.end_ts)}"
    ]
    if candles.inserted or candles.dropped:
        parts.append(
            f"fill-gaps inserted {candles.inserted} flat candles, dropped {candles.dropped}"
            " duplicate rows"
        )
    funding = f"{feed.funding_count} funding settlements"
    if feed.funding_from_file:
        funding += f" ({feed.funding_from_file} from file"
        if feed.funding_defaulted:
            funding += f", {feed.funding_defaulted} at default rate {feed.default_funding_rate}"
        funding += ")"
    else:
        funding += f" at default rate {feed.default_funding_rate}"
    parts.append(funding)
    if feed.has_mark_file:
        mark = f"mark price from the mark file for {feed.mark_covered} of {feed.total} candles"
        if feed.mark_covered < feed.total:
            mark += f" (WARNING: the other {feed.total - feed.mark_covered} use their close)"
        parts.append(mark)
    bar_ms = feed.strategy_bar_ms(settings.strategy.timeframe)
    bars = (
        f"on {format_duration(bar_ms)} bars built from the candles"
        if bar_ms is not None
        else f"on the {format_duration(feed.interval_ms)} candles"
    )
    shown = [f"{p.strategy} {p.params}" for p in settings.portfolio_plans()]
    parts.append(f"strategy {' + '.join(shown)} {bars}")
    return "; ".join(parts)


def register(app: typer.Typer) -> None:
    app.command("backtest")(backtest)
