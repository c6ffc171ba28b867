"""Quiet stretches of candles: most of a backtest's candles without a call per stage
per candle (issue 17).

In a backtest most candles only move prices: no order of the symbol rests or waits in
the venue, the mark stays inside the band where the ledger cannot liquidate, the
equity stays inside the band where the risk gate cannot change state, and the strategy
does not signal. For such candles the orchestrator walks the batch's columns
(CandleColumns, as Python lists) in one loop that does, candle by candle, only what
depends on the candle itself, with the same float operations in the same order:

  strategy   `candle_run(block)(i, j, plot_at, plot)`: the candles' signals, walked in
             one call up to the next snapshot that needs more than its row (the walk
             stops after the first candle that signals; its orders go out as after
             that candle alone)
  metrics    the equity snapshot when one is due: its row (0.0 + size * (mark -
             entry), from `ledger.unrealized_terms`) and a chart sample when due; the
             samples `PlotSampler.due` foresees are taken by the strategy's walk
             (`plot`), which they do not cut (but the one that thins the samples)
  ledger     `quiet_mark_band`: the loop stops before a mark outside it (its close, or
             a mark series' low or high inside the candle), which then takes
             `update_mark` (liquidation check) through `_on_event`
  risk       `quiet_band`: a snapshot outside it, or one with a log line due, takes the
             full `_snapshot` after the other stages caught up

and for the stages that need only the stretch's last candle (`_catch_up`): the clock,
the last price, the risk gate's data time and last equity, the ledger's mark, and the
trade's excursions (its worst and best prices are monotone in the lowest low and
highest high, so one update is exact). The venue is asked first (`quiet(symbol)`: no
order of the symbol queued or resting); a candle it has work for, a funding settlement
and the run's end go through `_on_event` as before.

The stored fills, orders, equity curve, excursions, funding, chart samples and the
journal are the same bytes as one candle at a time
(tests/orchestrator/test_quiet_stretches.py runs every case both ways and with plain
event lists). Only a run with one portfolio, no bar aggregation and no live listeners
takes this path, with a strategy that declares `candle_stretches` (it reads only its
events).
"""

from bisect import bisect_left
from collections.abc import Callable, Coroutine, Sequence
from time import perf_counter
from typing import Any

import numpy as np
import numpy.typing as npt

from perps_bot.domain import MarketEvent, Order, Signal
from perps_bot.feeds.bars import CandleAggregator
from perps_bot.feeds.columns import CandleColumns, EventColumns
from perps_bot.orchestrator.clock import Clock
from perps_bot.orchestrator.long_candles import LongCandles
from perps_bot.orchestrator.portfolio import Portfolio
from perps_bot.orchestrator.quiet_rows import QuietRows
from perps_bot.strategies import NO_SIGNALS, Strategy
from perps_bot.strategies.base import CandleRun

#: candles looked at per stretch: long enough to amortise the numpy calls, short
#: enough that a stretch cut short early wastes little
STRETCH = 256
#: candles a quiet stretch checks and values at a time (`_walk_quiet`)
CHUNK = 32
#: what an event or stretch without orders returns (shared, never mutated)
NO_ORDERS: list[Order] = []
#: stretch(i, at) -> (index after the stretch, its orders, when its work started)
Stretch = Callable[[int, int], tuple[int, list[Order], float]]


class QuietStretches(LongCandles):
    """A mixin of `Orchestrator` (orchestrator.engine); attributes are the engine's."""

    primary: Portfolio
    clock: Clock
    first_ts: int | None
    last_ts: int | None
    _candle_bars: CandleAggregator | None
    _equity_every: int
    _next_equity: int | None
    _next_log: int | None
    _last_price: dict[str, float]
    #: the block a quiet stretch last walked, its strategy, the strategy's `candle_run`
    #: of it, whether its candles are the equity interval apart (or more), what samples
    #: the chart after candle i of it (`PlotSampler.add`), and its times and marks as
    #: arrays (the equity rows `QuietRows.keep` leaves as their recipe)
    _quiet_block: (
        tuple[
            CandleColumns,
            Strategy,
            CandleRun,
            bool,
            Callable[[int], None],
            npt.NDArray[np.int64],
            npt.NDArray[np.float64],
        ]
        | None
    )
    _quiet_block = None

    def _on_event(self, event: MarketEvent) -> list[Order]:
        raise NotImplementedError

    async def _event(self, event: MarketEvent, end: int) -> bool:
        raise NotImplementedError

    def _takes_stretches(self) -> bool:
        """Whether this run can ever take a quiet stretch; if not, a CandleColumns batch
        goes through the per-event loop as the sequence of events it also is."""
        return (
            type(self.primary.strategy).keeps("candle_stretches")
            and len(self.portfolios) == 1
            and self._candle_bars is None
            and self._account_rec is None
        )

    def _walk_columns(self, block: CandleColumns, end: int) -> Coroutine[Any, Any, bool]:
        """Every event of `block` in the feed's order; False once the run's end is
        reached (like the per-event loop). Not itself async: compiled (mypyc), an async
        function's locals and its closures share one object, a reference cycle that
        kept every batch's columns alive until a full garbage collection (a peak of
        all of them)."""
        limit = bisect_left(block.lists().ts, end)  # candles from here on are past the end

        def stretch(i: int, at: int) -> tuple[int, list[Order], float]:
            if i >= limit:
                return i, NO_ORDERS, 0.0
            return self._stretch(block, i, min(at, limit, i + STRETCH))

        return self._walk_batch(block, end, stretch)

    async def _walk_batch(self, block: EventColumns, end: int, stretch: Stretch) -> bool:
        """Every event of a batch kept as columns, in the feed's order: its own events
        a quiet stretch at a time where `stretch(i, at)` takes them (up to the next
        insert at `at`; it returns the index after them, the orders of a signal on the
        last one and when the work started), else one at a time through `_on_event`,
        as are the inserts. False once the run's end is reached."""
        i = 0
        for at, other in [*block.inserts, (block.own_count(), None)]:
            while i < at:
                done, orders, received = stretch(i, at)
                if done > i:
                    i = done
                    if orders or self._cancel_due:
                        await self._submit_all(orders, received)
                    continue
                if not await self._event(block.own_event(i), end):
                    return False
                i += 1
            if other is not None and not await self._event(other, end):
                return False
        return True

    def _stretch(self, block: CandleColumns, i: int, j: int) -> tuple[int, list[Order], float]:
        """Candles i..j-1 as far as they are quiet: returns the index after the last one
        handled (i: none, the caller takes candle i alone), the orders of a strategy
        signal on that last candle, and when the work started (tick-to-order latency)."""
        p = self.primary
        symbol = block.symbol
        if (
            not self.venue.quiet(symbol)
            or self._signalled
            or self._cancel_due
            or self._next_equity is None
            or p.rec.listeners
            or self._inside  # a candle a funding settlement splits: _on_event
        ):
            return i, NO_ORDERS, 0.0
        band = p.ledger.quiet_mark_band(symbol)
        terms = p.ledger.unrealized_terms(symbol)
        if band is None or terms is None:
            return i, NO_ORDERS, 0.0
        j = block.mark_inside(i, j, *band)  # a mark series' wick out of it: _on_event
        if j == i:
            return i, NO_ORDERS, 0.0
        received = perf_counter()
        done, signals = self._walk_quiet(block, i, j, band, terms)
        if done == i:
            return i, NO_ORDERS, received
        if not signals:
            return done, NO_ORDERS, received
        self._signal(p, signals)
        return done, self._pending_orders(block.lists().ts[done - 1]), received

    def _walk_quiet(
        self,
        block: CandleColumns,
        i: int,
        j: int,
        band: tuple[float, float],
        terms: tuple[float, float],
    ) -> tuple[int, Sequence[Signal]]:
        """What the per-candle path would do with candles i..j-1 that depends on the
        candle itself: the strategy, and the equity snapshot (its row, a chart sample;
        a log line or a risk state change takes the full `_snapshot` after the other
        stages caught up). Stops before a mark the ledger has to check and after a
        candle that signals. The strategy walks the candles up to the next one whose
        snapshot needs more than its row (`QuietRows.scan`) in one call; the rows of
        those before it are added together."""
        p = self.primary
        cols = block.lists()
        ts, marks = cols.ts, cols.marks
        cached = self._quiet_block
        if cached is None or cached[0] is not block or cached[1] is not p.strategy:
            spaced = bool((np.diff(block.ts) >= self._equity_every).all())
            run = p.strategy.candle_run(block)
            times = np.ascontiguousarray(block.ts, dtype=np.int64)
            plotter = self._plotter(block)
            cached = self._quiet_block = (
                block,
                p.strategy,
                run,
                spaced,
                plotter,
                times,
                block.mark_array(),
            )
        run, plot = cached[2], cached[4]
        rows = QuietRows(self, terms, i, spaced=cached[3], symbol=block.symbol,
                         times=cached[5], mark_array=cached[6])  # fmt: skip
        low, high = band
        k = i
        signals: Sequence[Signal] = NO_SIGNALS
        m = i  # the marks of candles before m are inside the band
        while k < j:
            if k == m:
                # a chunk at a time: a stretch is cut short by a signal, often within
                # tens of candles, and the work for the candles after it would be lost
                m = first_outside(marks, low, high, k, min(j, k + CHUNK))
                if m == k:
                    break  # the ledger checks this one (update_mark)
            e = rows.scan(ts, marks, k, m)
            k, signals = run(k, e + 1 if e < m else m, rows.plot_at, plot)
            if rows.plot_at:
                rows.next_plot = p.plot.next_ts
            rows.keep(ts, k)
            if k > e:  # the strategy saw candle e: its snapshot
                self._quiet_snapshot(block, e, rows)
            if signals:
                break
        self._next_equity = rows.next_equity
        if k > rows.caught_up:
            self._catch_up(block, rows.caught_up, k, rows.last_equity)
        return k, signals

    def _plotter(self, block: CandleColumns) -> Callable[[int], None]:
        """`plot(i)`: the chart's sample after candle i of `block`, taken while the
        strategy walks a quiet stretch (`candle_run`), as `_quiet_snapshot` would."""
        cols = block.lists()
        ts, close, symbol = cols.ts, cols.close, block.symbol
        add, values = self.primary.plot.add, self.primary.strategy.plot_values
        return lambda i: add(ts[i], symbol, close[i], values(symbol))

    def _quiet_snapshot(self, block: CandleColumns, e: int, rows: QuietRows) -> None:
        """Candle e's rows inside it (a candle longer than the equity interval) and its
        snapshot when one is due: a row, with a chart sample when one is due, or the
        full `_snapshot` when a log line is due or the equity leaves the risk gate's
        quiet band."""
        cols = block.lists()
        t = cols.ts[e]
        plot = self.primary.plot
        if self._long_candles and rows.next_equity < t:  # rows inside the candle
            self._next_equity = rows.next_equity
            self._minute_rows(block.candle(e))
            rows.next_equity, rows.next_plot = self._next_equity, plot.next_ts
        if t < rows.next_equity:
            return
        cash = rows.cash
        unrealized = 0.0 + rows.size * (cols.marks[e] - rows.entry)
        equity = cash + unrealized
        if t >= rows.next_log or not (t < rows.until and rows.floor < equity <= rows.peak):
            self._catch_up(block, rows.caught_up, e + 1, rows.last_equity)
            rows.caught_up, rows.last_equity = e + 1, None
            self._snapshot(t)  # sets the next due times
            rows.reread(self)
            return
        rows.add_ts([t])
        rows.add_values([equity, cash, unrealized])
        rows.last_equity = equity
        rows.next_equity = t - t % rows.every + rows.every
        if t >= rows.next_plot:
            self._last_price[block.symbol] = cols.close[e]
            plot.sample(t)
            rows.next_plot = plot.next_ts

    def _catch_up(
        self, block: CandleColumns, start: int, stop: int, last_equity: float | None
    ) -> None:
        """The stages that need only the last of candles start..stop-1: the clock, the
        last price, the risk gate's data time and last equity, the trade's excursions
        (its worst and best prices are monotone in the lowest low and highest high) and
        the ledger's mark."""
        p = self.primary
        cols = block.lists()
        last = stop - 1
        ts_last = cols.ts[last]
        self.clock.advance(ts_last)
        self.last_ts = ts_last
        low, high = lowest_highest(cols.low, cols.high, start, stop)
        last_close, last_mark = cols.close[last], cols.marks[last]
        self._prices_moved((p,), block.symbol, ts_last, low, high, last_close, last_mark)
        if last_equity is not None:
            p.risk.quiet_equity(last_equity)

    def _prices_moved(
        self,
        portfolios: Sequence[Portfolio],
        symbol: str,
        ts: int,
        low: float,
        high: float,
        last: float,
        mark: float,
    ) -> None:
        """What the stages keep from a quiet stretch of `symbol`'s prices: the last
        price, and per portfolio trading it the risk gate's data time, the trade's
        excursions (its worst and best prices are monotone in the lowest and highest
        price, so one update with them is exact) and the ledger's last mark."""
        self._last_price[symbol] = last
        for p in portfolios:
            p.risk.on_market_data(symbol, ts)
            p.excursions.on_prices(symbol, low, high)
            p.ledger.mark_quietly(symbol, mark)


def first_outside(values: list[float], low: float, high: float, i: int, j: int) -> int:
    """The index of the first of values i..j-1 not strictly inside (low, high), else j.
    (A loop of float compares costs less than min, max and sum in C, whose compares
    take the generic path.)"""
    for k in range(i, j):
        if not low < values[k] < high:
            return k
    return j


def lowest_highest(
    lows: list[float], highs: list[float], start: int, stop: int
) -> tuple[float, float]:
    """`min(lows[start:stop])` and `max(highs[start:stop])`, the same floats (a NaN too:
    each keeps its first value until one compares below, or above, it), without the
    slices and the generic compares of min and max: a quiet stretch's catch-up took a
    fiftieth of a backtest's instructions in them."""
    low, high = lows[start], highs[start]
    for k in range(start + 1, stop):
        value = lows[k]
        if value < low:
            low = value
        value = highs[k]
        if value > high:
            high = value
    return low, high
