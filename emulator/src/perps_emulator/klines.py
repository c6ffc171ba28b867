"""Kline rows (GET /fapi/v1/klines and /fapi/v1/markPriceKlines) of one market.

Candles that closed before the emulator started come from the seeded history
(history.py); the rest are built from the prices the emulator walked since, so a
client warming up across the emulator's start sees one continuous series.
"""

from typing import Any

from perps_emulator import history
from perps_emulator.errors import BinanceError, mandatory
from perps_emulator.markets import PriceProcess, SymbolSpec
from perps_emulator.params import int_param
from perps_emulator.render import Params

KLINE_INTERVALS_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}
DAY_MS = 86_400_000
#: Binance's weekly klines open on Mondays 00:00 UTC, four days after the epoch's
#: Thursday (the other intervals open on their multiples since the epoch)
WEEK_SHIFT_MS = 4 * DAY_MS


def kline_rows(market: PriceProcess, params: Params, now: int, *, mark: bool) -> list[list[Any]]:
    """Up to `limit` (default 500, at most 1500) candles from startTime (or ending at
    endTime / now): the seeded history for those that closed before the emulator
    started, the prices it walked since for the rest."""
    interval = params.get("interval")
    if not interval:
        raise mandatory("interval")
    if interval not in KLINE_INTERVALS_MS:
        raise BinanceError(-1120, "Invalid interval.")
    width = KLINE_INTERVALS_MS[interval]
    shift = WEEK_SHIFT_MS if interval == "1w" else 0  # Binance's weeks open on Mondays
    limit = min(int_param(params, "limit") or 500, 1500)
    end = int_param(params, "endTime") or now
    start = int_param(params, "startTime")
    last_open = (end - shift) // width * width + shift
    first_open = (
        (start - shift) // width * width + shift
        if start is not None
        else last_open - (limit - 1) * width
    )
    opens = range(first_open, last_open + 1, width)[:limit]
    started = walk_started(market, now)
    past = [t for t in opens if t + width <= started]
    rows = [_row(market.spec, t, width, history.candle(market.spec, market.seed, t, width,
                                                          mark=mark), mark)
            for t in past]  # fmt: skip
    return rows + _live_rows(market, list(opens[len(past) :]), width, mark, now)


def walk_started(market: PriceProcess, now: int) -> int:
    """When the emulator began walking this market's price (its history starts there)."""
    return market.history[0][0] if market.history else now


def _live_rows(
    market: PriceProcess, opens: list[int], width: int, mark: bool, now: int
) -> list[list[Any]]:
    spec = market.spec
    history_ = list(market.history)
    rows = []
    previous_close = (
        next((p for t, p in history_ if t >= (opens[0] if opens else now)), market.last)
        if history_
        else market.last
    )
    for open_time in opens:
        prices = [p for t, p in history_ if open_time <= t < open_time + width]
        o = previous_close
        h, low, c = max([o, *prices]), min([o, *prices]), prices[-1] if prices else o
        volume = spec.level_qty * (1 + len(prices))
        rows.append(_row(spec, open_time, width, (o, h, low, c, volume), mark))
        previous_close = c
    return rows


def _row(
    spec: SymbolSpec,
    open_time: int,
    width: int,
    ohlcv: tuple[float, float, float, float, float],
    mark: bool,
) -> list[Any]:
    """A Binance kline row (mark-price klines carry no volume)."""
    o, h, low, c, volume = ohlcv
    if mark:
        volume = 0.0
    quote = volume * c
    return [
        open_time,
        spec.fmt_price(o),
        spec.fmt_price(h),
        spec.fmt_price(low),
        spec.fmt_price(c),
        spec.fmt_qty(volume) if not mark else "0",
        open_time + width - 1,
        f"{quote:.4f}" if not mark else "0",
        0 if mark else 1 + int(volume // max(spec.level_qty, 1e-12)),
        spec.fmt_qty(volume / 2) if not mark else "0",
        f"{quote / 2:.4f}" if not mark else "0",
        "0",
    ]
