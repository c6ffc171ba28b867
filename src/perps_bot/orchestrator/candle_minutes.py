"""Equity rows inside a candle longer than the equity interval (SPEC 6: "at least one
row per simulated minute").

A backtest on 5m, 1h or 1d candles sees one event per candle, at its close. The
equity curve still gets a row every `run.equity_interval` (1m): before the candle's
own stages run, one row per due minute strictly before its close, valued on the
candle's documented price path (the venue's: open at the open time, the nearer
extreme at 1/3 of the bar, the other at 2/3, the close at the close; `candle_path:
adaptive` as the venue walks it). Between two path points the price is taken on the
straight line between them (the venue treats the move to a point as passing through
every price between). With a mark file, the path is the mark's (venues.order_queue's
`mark_path`) where the candle has the mark's extremes, and ends at the mark's close.

The rows hold the books as they are before the candle: its fills carry the candle's
close time, so they are in the rows from the close on; cash stays as it was (a candle
a funding settlement splits is walked part by part, each part's rows after its
fills; several symbols' candles closing together are walked together, each symbol on
its own path: orchestrator.long_candles). They are curve rows
only: the risk gate, the log and the chart samples see the candle's close, as before.
A 1-minute candle has no row due before its close, so a 1m backtest is unchanged.
The rows are built with numpy and go to the store's columnar buffer, which is
flushed once it holds a batch, so a year of hourly candles (525,600 rows) or ten
years of daily ones stay in bounded memory.
"""

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from perps_bot.domain import Candle
from perps_bot.ledger import AccountBooks, Ledger
from perps_bot.storage.equity_blocks import EquityBuffer
from perps_bot.venues.fill_rules import candle_path
from perps_bot.venues.order_queue import mark_path

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def first_due(event_ts: int, open_time: int, every: int) -> int:
    """When a run that starts with a candle takes its first equity row: the first
    interval boundary after the candle's open, at the latest its close."""
    return min(event_ts, open_time - open_time % every + every)


def path_points(
    candle: Candle, adaptive: bool
) -> tuple[tuple[int, int, int, int], tuple[float, float, float, float]]:
    """The times of the candle's path points (as the venue places them) and the mark
    at each: the price path, or the mark's where the candle has its extremes, ending
    at the mark's close when there is one."""
    start, end = candle.open_time, candle.ts
    span = max(end - start, 0)
    prices = candle_path(candle, adaptive=adaptive)
    if candle.mark_low is not None and candle.mark_high is not None:
        values = mark_path(candle, prices)
    else:
        close = candle.mark if candle.mark is not None else candle.close
        values = (prices[0], prices[1], prices[2], close)
    return (start, start + span // 3, start + span * 2 // 3, end), values


def path_prices(candle: Candle, times: IntArray, adaptive: bool) -> FloatArray:
    """The path's mark at `times` (straight lines between the path points)."""
    points, values = path_points(candle, adaptive)
    return np.interp(times, points, values)


def add_rows(
    sink: EquityBuffer,
    books: Ledger | AccountBooks,
    times: IntArray,
    prices: Mapping[str, FloatArray],
) -> None:
    """Rows of `books` at `times` with each symbol of `prices` marked at its prices."""
    base, slopes = books.unrealized_line(prices.keys())
    cash = books.wallet_balance()
    unrealized: FloatArray | None = None
    for symbol, slope in slopes.items():
        if slope:
            moved = slope * prices[symbol]
            unrealized = base + moved if unrealized is None else unrealized + moved
    if unrealized is None:
        unrealized = np.full(times.shape[0], base)
    sink.add_many(times, cash + unrealized, np.full(times.shape[0], cash), unrealized)
