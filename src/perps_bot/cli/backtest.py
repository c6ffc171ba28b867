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
from typing import Annotated, Any

import typer
from rich.console import Console

from perps_bot.cli.options import strategy_overrides
from perps_bot.config import ConfigError, Settings, load_settings
from perps_bot.domain import RunMode, format_duration, iso_utc, parse_duration
from perps_bot.feeds.historical import CandleFeed


def backtest(
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="Candles: .csv (timestamp,open,high,low,close,volume), .feather or .json.gz.",
        ),
    ],
    symbol: Annotated[str, typer.Option("--symbol", help="Symbol name, e.g. BTC-PERP.")],
    strategy: Annotated[
        list[str],
        typer.Option(
            "--strategy",
            help="Built-in name (sma_cross, ...) or package.module:Class; repeat it to run"
            " several side by side (each its own portfolio, --param ID.key=value).",
        ),
    ],
    funding: Annotated[
        Path | None,
        typer.Option(
            "--funding",
            help="Funding-rate file (rate in `open`); times are floored to the funding interval."
            " Without it, funding settles at account.default_funding_rate.",
        ),
    ] = None,
    mark: Annotated[
        Path | None, typer.Option("--mark", help="Mark-price candles (OHLC) in any data format.")
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
) -> None:
    """Replay historical candles (and funding / mark files) through the bot."""
    from perps_bot.orchestrator.runner import Interrupted, run_bot_sync

    console = Console()
    try:
        settings, feed = _prepare(
            data=data,
            symbol=symbol,
            strategy=strategy,
            funding=funding,
            mark=mark,
            params=param,
            profile=profile,
            fill_gaps=fill_gaps,
            seed=seed,
            initial_balance=initial_balance,
            order_size=order_size,
            db=db,
            timeframe=timeframe,
        )
        console.print(describe_feed(feed, settings), highlight=False, soft_wrap=True)
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


def _prepare(
    *,
    data: Path,
    symbol: str,
    strategy: list[str],
    funding: Path | None,
    mark: Path | None,
    params: list[str] | None,
    profile: str,
    fill_gaps: bool,
    seed: int | None,
    initial_balance: float | None,
    order_size: float | None,
    db: str | None,
    timeframe: str | None = None,
) -> tuple[Settings, CandleFeed]:
    """Validate flags and files, then build the settings and the feed (one-line errors)."""
    symbol = symbol.strip()
    if not symbol:
        raise ConfigError("bad --symbol: give a symbol name, e.g. BTC-PERP")
    base = load_settings(profile)  # fails early on a bad profile, tells the funding schedule
    funding_interval_ms = parse_duration(base.account.funding_interval)
    feed = CandleFeed.from_files(
        symbol,
        data,
        funding=funding,
        mark=mark,
        funding_interval_ms=funding_interval_ms,
        default_funding_rate=base.account.default_funding_rate,
        fill_gaps=fill_gaps,
    )
    run: dict[str, Any] = {"symbols": [symbol], "mode": RunMode.BACKTEST, "duration": None}
    if seed is not None:
        run["seed"] = seed
    if db is not None:
        run["database"] = db
    overrides = strategy_overrides(strategy, params)
    strategy_section: dict[str, Any] = overrides.setdefault("strategy", {})
    strategy_section.setdefault("params", {})  # the profile's are its own strategy's
    if timeframe is not None:
        strategy_section["timeframe"] = timeframe
    if order_size is not None:
        strategy_section["order_size"] = {symbol: order_size}
    overrides |= {"run": run, "mock": {"start": iso_utc(feed.start_ts)}}
    if initial_balance is not None:
        overrides["account"] = {"initial_balance": initial_balance}
    settings = load_settings(profile, overrides)
    feed.strategy_bar_ms(settings.strategy.timeframe)  # a timeframe that does not fit: fail now
    return settings, feed


def describe_feed(feed: CandleFeed, settings: Settings) -> str:
    """One line saying what is replayed, including every repair and assumption."""
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
