"""A ccxt-like exchange of klines on its own clock, for the warm-up edge tests: candles
of any interval it lists are built from its 1m candles; the one its clock is inside of is
still open (its close is OPEN_CLOSE, its prices so far); each request takes `latency_ms`
of its clock (the answer is made when the request arrives)."""

from typing import Any, ClassVar

import ccxt.async_support as ccxt_async

MINUTE = 60_000
#: the close of a candle still open on the exchange (no closed candle has it)
OPEN_CLOSE = 999.0


def minute(open_time: int) -> list[float]:
    """The closed 1m candle opening at `open_time`: [open, high, low, close, volume]."""
    i = open_time // MINUTE
    o, c = 100.0 + i % 7, 100.0 + (i + 3) % 11
    return [o, max(o, c) + 1.0, min(o, c) - 1.0, c, 1.0 + i % 5]


def candle(open_time: int, width: int, now: int) -> list[Any]:
    """The candle of `width` opening at `open_time` as the exchange has it at `now`."""
    rows = [minute(t) for t in range(open_time, min(open_time + width, now + 1), MINUTE)]
    o, h, low, c, v = rows[0][0], max(r[1] for r in rows), min(r[2] for r in rows), rows[-1][3], 0.0
    v = sum(r[4] for r in rows)
    if open_time + width > now:  # still open
        c, h = OPEN_CLOSE, OPEN_CLOSE
    return [open_time, o, h, low, c, v]


class KlinesExchange:
    timeframes: ClassVar[dict[str, str]] = {
        name: name for name in ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "1d")
    }
    parse_timeframe = staticmethod(ccxt_async.Exchange.parse_timeframe)

    def __init__(self, now: int, latency_ms: int = 0) -> None:
        self.now = now
        self.latency_ms = latency_ms
        self.asked: list[tuple[str, str, int]] = []

    async def fetch_ohlcv(self, symbol: str, timeframe: str, limit: int) -> list[list[Any]]:
        self.asked.append((symbol, timeframe, limit))
        width = int(self.parse_timeframe(timeframe) * 1000)
        last = self.now // width * width
        rows = [candle(last - i * width, width, self.now) for i in reversed(range(limit))]
        self.now += self.latency_ms
        return rows

    async def sleep(self, seconds: float) -> None:
        """The feed's sleep: the exchange's time (and the bot's, which follows it) moves on."""
        self.now += int(seconds * 1000)

    async def close(self) -> None:
        return None
