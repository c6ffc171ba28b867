"""Warm-up candles and the bot's own bars (feeds.exchange_warmup): the bot builds bars
of `strategy.timeframe` aligned to its multiples since the epoch (feeds.bars), so a
warm-up candle is one of those bars only when it opens on that grid. Binance's weekly
candles open on Mondays (the epoch's weeks on Thursdays) and its monthly ones on the
1st (ccxt names them 30 days): they are no bars of the bot's."""

from typing import Any, ClassVar

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
    """The klines Binance gives for '1w': weeks from Monday 00:00 UTC, the last still open."""

    timeframes: ClassVar[dict[str, str]] = {"1m": "1m", "1w": "1w"}
    parse_timeframe = staticmethod(ccxt_async.Exchange.parse_timeframe)

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, int]] = []

    async def fetch_ohlcv(self, symbol: str, timeframe: str, limit: int) -> list[list[Any]]:
        self.asked.append((symbol, timeframe, limit))
        opens = [MONDAY + i * WEEK for i in range(-limit + 3, 3)]
        return [[t, 100.0, 101.0, 99.0, 100.5, 10.0] for t in opens]

    async def close(self) -> None:
        return None


async def test_weekly_candles_that_open_off_the_bots_weeks_warm_nothing_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A strategy on 1w bars: the bot's weeks run Thursday to Thursday, Binance's Monday
    to Monday. The Monday candles were handed to the strategy as its bars, the last one
    (to Monday) overlapping the first live bar (from the Thursday before), three days
    counted twice; they are not the bot's bars, and the run starts cold, saying so."""
    exchange = WeeklyKlines()
    feed = ExchangeFeed(exchange, ExchangeConfig(), ["BTC-PERP"], clock=lambda: NOW)
    got = await feed.warmup_candles({"BTC-PERP": 5}, WEEK)
    assert exchange.asked == [("BTC/USDT:USDT", "1w", 6)]
    assert got == {}
    assert "off the bot's 1w bars" in caplog.text and "it starts without warm-up" in caplog.text
