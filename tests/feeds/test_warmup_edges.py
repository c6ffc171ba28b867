"""The warm-up candles at the edge of the start (feeds.exchange_warmup): the last one
hands over to the first live bar, which the bot builds from ticks stamped on its own
clock. Against a klines exchange on its own clock (tests/feeds/warmup_exchange.py)."""

import pytest

from perps_bot.config.models import ExchangeConfig
from perps_bot.domain import Candle, iso_utc
from perps_bot.feeds.exchange import ExchangeFeed
from perps_bot.feeds.exchange_warmup import whole_bars
from tests.feeds.warmup_exchange import MINUTE, OPEN_CLOSE, KlinesExchange, candle

#: a minute boundary
B = 1_700_000_040_000 // MINUTE * MINUTE
CFG = ExchangeConfig(backoff_base="100ms", backoff_max="400ms", max_retries=5)


def feed_on(exchange: KlinesExchange, skew_ms: int, symbols: list[str]) -> ExchangeFeed:
    """The bot's feed, its clock `skew_ms` ahead of the exchange's."""
    return ExchangeFeed(exchange, CFG, symbols, clock=lambda: exchange.now + skew_ms,
                        sleep=exchange.sleep)  # fmt: skip


def closed(c: Candle, width: int = MINUTE) -> list[float]:
    return [c.open_time, c.open, c.high, c.low, c.close, c.volume]


async def test_a_candle_still_open_on_the_exchange_is_not_taken_as_closed() -> None:
    """The bot's clock 3 s ahead of the exchange's, 1 s before a minute closes there: the
    bot takes that minute for closed. Its candle, still open on the exchange (its prices
    so far), was handed to the strategy as a closed bar; no candle the exchange has not
    closed is (the bot's clock behind: the exchange's closed minute the bot still builds
    from ticks is left to the live bar, not counted twice)."""
    for skew in (3_000, -3_000):
        exchange = KlinesExchange(B + (-1_000 if skew > 0 else 1_000))
        feed = feed_on(exchange, skew, ["ETH-PERP"])
        got = (await feed.warmup_candles({"ETH-PERP": 5}, MINUTE))["ETH-PERP"]
        assert [c.close for c in got if c.close == OPEN_CLOSE] == [], skew
        assert got[-1].ts <= exchange.now + skew  # closed on the bot's clock too
        assert closed(got[-1]) == candle(got[-1].open_time, MINUTE, exchange.now)


async def test_the_warm_up_reaches_the_bar_the_live_feed_starts_in() -> None:
    """The first live bar is the one the bot's clock is in when the warm-up ends. A slow
    klines request per symbol (5 s each) that crosses a minute: the minute closing during
    the fetch was in no symbol's warm-up fetched before it closed (a one-bar gap before
    the first live bar); the bot's clock 3 s ahead of the exchange's at the close of a
    minute: that minute, open on the exchange, was in none. Each symbol's warm-up now ends
    where the live bars begin, with the exchange's closed candles (asked again, after a
    pause while the exchange has not closed it yet)."""
    symbols = ["ETH-PERP", "BTC-PERP", "SOL-PERP"]
    for start, latency, skew in ((B - 8_000, 5_000, 0), (B - 1_000, 0, 3_000)):
        exchange = KlinesExchange(start, latency)
        feed = feed_on(exchange, skew, symbols)
        got = await feed.warmup_candles(dict.fromkeys(symbols, 5), MINUTE)
        now = exchange.now + skew
        live_from = now - now % MINUTE  # the first live bar opens here
        assert sorted(got) == sorted(symbols)
        for symbol in symbols:
            candles = got[symbol]
            assert candles[-1].ts == live_from, (start, symbol)
            assert [c.open_time for c in candles] == [
                live_from - i * MINUTE for i in range(5, 0, -1)
            ]
            assert [closed(c) for c in candles] == [
                candle(c.open_time, MINUTE, exchange.now) for c in candles
            ]


async def test_bars_the_exchange_has_no_candles_of_are_built_from_finer_ones() -> None:
    """Binance has 1m, 3m, 5m, 15m... klines: a strategy on 2m or 10m bars started
    without warm-up. Its bars are built from the exchange's longest interval that divides
    them (1m for 2m, 5m for 10m), aggregated as a backtest of finer candles is, each bar
    whole (a bar the candles start inside of is left out) and closed."""
    exchange = KlinesExchange(B + 7 * MINUTE + 20_000)
    for width, interval in ((2 * MINUTE, "1m"), (10 * MINUTE, "5m")):
        exchange.asked.clear()
        feed = feed_on(exchange, 0, ["ETH-PERP"])
        got = (await feed.warmup_candles({"ETH-PERP": 4}, width))["ETH-PERP"]
        now = exchange.now
        live_from = now - now % width
        assert {asked[1] for asked in exchange.asked} == {interval}
        assert [c.open_time for c in got] == [live_from - i * width for i in range(4, 0, -1)]
        assert [c.ts - c.open_time for c in got] == [width] * 4
        assert [closed(c) for c in got] == [candle(c.open_time, width, now) for c in got]


def test_a_bar_the_candles_start_inside_of_is_left_out_even_with_a_hole_in_it() -> None:
    """5m candles of 10:05 and from 10:15 to 10:40 (the exchange has none of 10:10), as
    15m bars: 10:00 is no whole bar, 10:15 and 10:30 are (the first of those was left out
    as the bar the candles start inside of)."""
    five = 5 * MINUTE
    at_10 = B - B % (3 * five)
    opens = [at_10 + i * five for i in (1, 3, 4, 5, 6, 7, 8)]
    candles = [Candle(ts=t + five, symbol="ETH-PERP", open_time=t, open=1.0, high=2.0,
                      low=0.5, close=1.5, volume=1.0) for t in opens]  # fmt: skip
    bars = whole_bars(candles, 3 * five)
    assert [(b.open_time - at_10) // MINUTE for b in bars] == [15, 30]
    assert [b.volume for b in bars] == [3.0, 3.0]


async def test_an_exchange_far_behind_the_bots_clock_is_asked_a_few_times_then_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The exchange's clock 2 minutes behind the bot's: its candles never reach the bar
    the bot is in. Asked again exchange.max_retries times (pausing), then one line for
    all the symbols, and the warm-up goes on with what the exchange closed."""
    symbols = ["ETH-PERP", "BTC-PERP"]
    exchange = KlinesExchange(B + 10_000)
    feed = feed_on(exchange, 2 * MINUTE, symbols)
    got = await feed.warmup_candles(dict.fromkeys(symbols, 5), MINUTE)
    assert len(exchange.asked) == 2 * (1 + CFG.max_retries)
    assert [c.ts for c in got["ETH-PERP"]] == [B - i * MINUTE for i in range(4, -1, -1)]
    said = [r for r in caplog.records if "warm-up" in r.getMessage()]
    assert len(said) == 1 and said[0].levelname == "WARNING"
    assert f"ETH-PERP from {iso_utc(B)}, BTC-PERP from {iso_utc(B)}" in said[0].getMessage()
