"""`perps-bot data download`: market history from the exchange into Feather files the
backtester reads (feeds.download). The exchange is the profile's (`exchange:`; e.g.
PERPS_BOT__EXCHANGE__BASE_URL points it at the loopback emulator); the symbols' exchange
names come from their instruments. Only public endpoints are called (no keys)."""

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from perps_bot.feeds.download import Series

data_app = typer.Typer(help="Market data: download history for backtests.", no_args_is_help=True)


@data_app.command("download")
def download(
    symbols: Annotated[
        str, typer.Option("--symbols", help="Comma-separated, e.g. BTC-PERP,ETH-PERP.")
    ],
    since: Annotated[
        str,
        typer.Option(
            "--since", help="Start (UTC), e.g. 2024-01-01: candles that open at or after it."
        ),
    ],
    timeframe: Annotated[
        str, typer.Option("--timeframe", help="Candle size, e.g. 1m, 5m, 1h.")
    ] = "1m",
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="End (UTC) [default: now]: candles that close at or"
            " before it (the last opens one --timeframe earlier).",
        ),
    ] = None,
    funding: Annotated[
        bool,
        typer.Option(
            "--funding",
            help="Also the funding-rate history: funding settlements at"
            " or after --since and at or before --until (the backtest settles one at"
            " the last candle's close).",
        ),
    ] = False,
    mark: Annotated[bool, typer.Option("--mark", help="Also mark-price candles.")] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder [default: <data_dir>/history/<exchange>]."),
    ] = None,
    profile: Annotated[
        str, typer.Option("--profile", help="Profile naming the exchange.")
    ] = "canary",
) -> None:
    """Download candles (and funding, mark candles): paginated, incremental, resumable."""
    import asyncio

    from rich.console import Console

    from perps_bot.cli.options import flag_duration, flag_time, parse_symbols
    from perps_bot.config import ConfigError, load_settings
    from perps_bot.config.models import distinct_symbols
    from perps_bot.domain import iso_utc, short
    from perps_bot.exchange.client import create_exchange
    from perps_bot.exchange.runtime import close_quietly
    from perps_bot.exchange.startup import load_markets_within
    from perps_bot.feeds.download import Downloader, check_listed, describe, series_for
    from perps_bot.instruments import catalog_from_profile

    names = parse_symbols(symbols) or []
    try:  # each file once, as every other command's --symbols
        distinct_symbols(names)
    except ValueError as exc:
        raise ConfigError(f"bad --symbols {short(symbols)!r}: {exc}") from None
    start = flag_time("--since", since)
    now = int(datetime.now(UTC).timestamp() * 1000)
    end = now if until is None else min(flag_time("--until", until), now)
    if until is None and start >= now:
        raise ConfigError(f"bad --since {short(since)!r}: {iso_utc(start)} is in the future"
                          f" (now {iso_utc(now)})")  # fmt: skip
    if start >= end:
        raise ConfigError(f"--since {iso_utc(start)} is not before --until ({iso_utc(end)})")
    if out is not None and out.exists() and not out.is_dir():
        raise ConfigError(f"cannot write to {out}: not a folder")
    flag_duration("--timeframe", timeframe)
    settings = load_settings(profile)
    catalog = catalog_from_profile(settings.instruments, settings.fees).require(names)
    folder = out or Path(settings.run.data_dir) / "history" / settings.exchange.name
    interval = settings.account.funding_interval
    wanted = [
        s
        for name in names
        for s in series_for(
            name,
            catalog[name].exchange_symbol,
            timeframe,
            folder,
            funding=funding,
            mark=mark,
            funding_interval=interval,
        )
    ]
    console = Console()

    async def run() -> None:
        client = create_exchange(settings.exchange, private=False)
        try:
            loader = Downloader(client, settings.exchange, timeframe=timeframe,
                                say=lambda text: console.print(text, highlight=False))  # fmt: skip
            await load_markets_within(client, settings.exchange)
            check_listed(client, wanted)
            for series in wanted:
                added = await loader.fill(series, start, end)
                console.print(f"{describe(series)}: {_written(series, added, start, end)}",
                              highlight=False, soft_wrap=True)  # fmt: skip
        finally:
            await close_quietly(client)

    asyncio.run(run())


def _written(series: "Series", added: int, start: int, end: int) -> str:
    """What one series' download wrote; plainly nothing when the exchange has no row in
    the range (funding between two settlements): no file, not `0 new rows -> PATH` of a
    file that `backtest --funding PATH` then did not find."""
    if series.path.exists():
        return f"{added} new rows -> {series.path}"
    from perps_bot.domain import iso_utc

    flag = {"funding": "; backtest without --funding", "mark": "; backtest without --mark"}
    return (f"none from {iso_utc(start)} to {iso_utc(end)}: nothing written"
            f" ({series.path.name} not created{flag.get(series.kind, '')})")  # fmt: skip


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
