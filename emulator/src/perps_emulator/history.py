"""Deterministic market history before the emulator started: candles, mark-price
candles and funding settlements for any time range, the same on every call.

Why: a downloader has to be tested on months of data, paged, resumed and continued,
and the emulator only remembers the prices it walked since it started. The past is a
pure function of (seed, symbol, time):
- The price at each UTC midnight is the symbol's initial price moved by a few slow
  sine waves (a level that drifts by some percent over weeks).
- Within a day, 1-minute closes follow a seeded random walk pinned to the next
  midnight's price (a Brownian bridge): one numpy generator per (seed, symbol, day),
  so any day is computed on its own, and consecutive days join up.
- A minute's open is the previous close; its high and low add seeded wicks.
- Longer candles aggregate the minutes (open of the first, close of the last,
  extremes of all). Mark candles are the same path times a small, slowly varying
  premium. Funding settles every 8 h at a rate around the neutral 0.01%.
"""

import math
import zlib
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from perps_emulator.markets import FUNDING_INTERVAL_MS, FUNDING_MEAN, SymbolSpec

MINUTE_MS = 60_000
DAY_MS = 86_400_000
MINUTES = DAY_MS // MINUTE_MS
DAY_VOL = 0.02  # standard deviation of a day's log return inside the bridge

Floats = npt.NDArray[np.float64]


def _rng(seed: int, symbol: str, what: str, key: int) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(f"{seed}:{symbol}:{what}:{key}".encode()))


def _midnight_price(initial: float, day: int) -> float:
    level = 0.08 * math.sin(day / 11.0) + 0.05 * math.sin(day / 3.7 + 1.0)
    return initial * math.exp(level)


@lru_cache(maxsize=64)
def _day(seed: int, symbol: str, initial: float, day: int) -> tuple[Floats, Floats, Floats]:
    """Closes, highs and lows of the day's 1,440 minutes (the bridge between midnights)."""
    rng = _rng(seed, symbol, "day", day)
    start, end = (
        math.log(_midnight_price(initial, day)),
        math.log(_midnight_price(initial, day + 1)),
    )
    steps = rng.normal(0.0, DAY_VOL / math.sqrt(MINUTES), MINUTES)
    walk = np.cumsum(steps)
    ramp = np.arange(1, MINUTES + 1) / MINUTES
    closes = np.exp(start + walk - ramp * (walk[-1] - (end - start)))
    opens = np.concatenate(([math.exp(start)], closes[:-1]))
    wicks = np.abs(rng.normal(0.0, 0.0004, (2, MINUTES)))
    highs = np.maximum(opens, closes) * np.exp(wicks[0])
    lows = np.minimum(opens, closes) * np.exp(-wicks[1])
    return closes, highs, lows


def minutes(spec: SymbolSpec, seed: int, start: int, end: int) -> tuple[Floats, ...]:
    """(open, high, low, close) of the 1-minute candles opening in [start, end)."""
    first, last = start // MINUTE_MS, -(-end // MINUTE_MS)
    parts: list[tuple[Floats, Floats, Floats, Floats]] = []
    for day in range(first // MINUTES, -(-last // MINUTES)):
        closes, highs, lows = _day(seed, spec.symbol, spec.initial_price, day)
        opens = np.concatenate(([_midnight_price(spec.initial_price, day)], closes[:-1]))
        lo = max(first - day * MINUTES, 0)
        hi = min(last - day * MINUTES, MINUTES)
        parts.append((opens[lo:hi], highs[lo:hi], lows[lo:hi], closes[lo:hi]))
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(4))


def candle(
    spec: SymbolSpec, seed: int, open_time: int, width: int, *, mark: bool = False
) -> tuple[float, float, float, float, float]:
    """(open, high, low, close, volume) of the candle of `width` ms opening at `open_time`."""
    o, h, low, c = minutes(spec, seed, open_time, open_time + width)
    if mark:
        premium = 1.0 + 0.0003 * np.sin(np.arange(o.shape[0]) / 97.0 + open_time / 3.6e6)
        o, h, low, c = o * premium, h * premium, low * premium, c * premium
    rounded = [spec.round_price(float(x)) for x in (o[0], h.max(), low.min(), c[-1])]
    op, cl = rounded[0], rounded[3]
    hi, lo = max(rounded[1], op, cl), min(rounded[2], op, cl)
    volume = float(_rng(seed, spec.symbol, "vol", open_time // width).lognormal(3.0, 0.5))
    return op, hi, lo, cl, spec.level_qty * volume * width / MINUTE_MS


def funding(spec: SymbolSpec, seed: int, time: int) -> tuple[float, float]:
    """(rate, mark price) of the settlement at `time` (a multiple of 8 h)."""
    n = time // FUNDING_INTERVAL_MS
    noise = float(_rng(seed, spec.symbol, "funding", n).normal(0.0, 0.00005))
    rate = FUNDING_MEAN + 0.00008 * math.sin(n / 5.0) + noise
    mark = candle(spec, seed, time - MINUTE_MS, MINUTE_MS, mark=True)[3]
    return round(rate, 8), mark
