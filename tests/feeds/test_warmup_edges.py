"""The warm-up candles at the edge of the start (feeds.exchange_warmup): the last one
hands over to the first live bar, which the bot builds from ticks stamped on its own
clock. Against a klines exchange on its own clock (tests/feeds/warmup_exchange.py)."""

from perps_bot.config.models import ExchangeConfig
from perps_bot.domain import Candle
from perps_bot.feeds.exchange import ExchangeFeed
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
