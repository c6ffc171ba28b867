"""Warm-up candles and the bot's own bars (feeds.exchange_warmup): the bot builds bars
of `strategy.timeframe` aligned to its multiples since the epoch (feeds.bars), so a
warm-up candle is one of those bars only when it opens on that grid. Binance's weekly
candles open on Mondays (the epoch's weeks on Thursdays) and its monthly ones on the
1st (ccxt names them 30 days): they are no bars of the bot's, which are built from the
exchange's days instead."""

import logging
from typing import Any

import ccxt.async_support as ccxt_async
import pytest

from perps_bot.config.models import ExchangeConfig
from perps_bot.feeds.exchange import ExchangeFeed

DAY = 86_400_000
WEEK = 7 * DAY
#: Monday 2023-11-20 00:00 UTC, where a Binance weekly candle opens
MONDAY = 1_700_438_400_000
NOW = MONDAY + 2 * WEEK + 3 * DAY  # a Thursday, mid-week


class WeeklyKlines:
    """The klines Binance gives for '1w' (weeks from Monday 00:00 UTC) and '1d' (days
    from midnight), the last one still open."""

    parse_timeframe = staticmethod(ccxt_async.Exchange.parse_timeframe)

    def __init__(self, timeframes: tuple[str, ...] = ("1m", "1d", "1w")) -> None:
        self.timeframes = {name: name for name in timeframes}
        self.asked: list[tuple[str, str, int]] = []

    async def fetch_ohlcv(self, symbol: str, timeframe: str, limit: int) -> list[list[Any]]:
        self.asked.append((symbol, timeframe, limit))
        step, last = (WEEK, MONDAY + 2 * WEEK) if timeframe == "1w" else (DAY, NOW - NOW % DAY)
        opens = [last - i * step for i in reversed(range(limit))]
        return [[t, 100.0 + t // DAY % 7, 101.0 + t // DAY % 7, 99.0, 100.5, 10.0] for t in opens]

    async def close(self) -> None:
        return None


async def test_weekly_candles_that_open_off_the_bots_weeks_are_built_from_days(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A strategy on 1w bars: the bot's weeks run Thursday to Thursday, Binance's Monday
    to Monday. The Monday candles were handed to the strategy as its bars, the last one
    (to Monday) overlapping the first live bar (from the Thursday before), three days
    counted twice; then the run started cold. The bot's weeks are built of seven days."""
    exchange = WeeklyKlines()
    feed = ExchangeFeed(exchange, ExchangeConfig(), ["BTC-PERP"], clock=lambda: NOW)
    got = (await feed.warmup_candles({"BTC-PERP": 5}, WEEK))["BTC-PERP"]
    assert exchange.asked == [("BTC/USDT:USDT", "1w", 6), ("BTC/USDT:USDT", "1d", 42)]
    assert [b.ts for b in got] == [NOW - NOW % WEEK - i * WEEK for i in range(4, -1, -1)]
    assert {b.ts - b.open_time for b in got} == {WEEK}
    assert [b.open for b in got] == [100.0 + b.open_time // DAY % 7 for b in got]
    assert {b.high for b in got} == {107.0} and {b.volume for b in got} == {70.0}
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert not [line for line in said if "warm-up" in line], said  # a debug line may name it


async def test_an_exchange_with_only_weeks_off_the_bots_warms_nothing_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exchange = WeeklyKlines(("1w",))
    feed = ExchangeFeed(exchange, ExchangeConfig(), ["BTC-PERP"], clock=lambda: NOW)
    got = await feed.warmup_candles({"BTC-PERP": 5}, WEEK)
    assert exchange.asked == [("BTC/USDT:USDT", "1w", 6)]
    assert got == {}
    assert "off the bot's 1w bars" in caplog.text and "it starts without warm-up" in caplog.text
