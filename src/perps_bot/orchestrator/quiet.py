"""Quiet stretches of candles: the stages' work for many candles at once (issue 17).

In a backtest most candles only move prices: no order of the symbol rests or waits in
the venue, the mark stays inside the band where the ledger cannot liquidate, the
equity stays inside the band where the risk gate cannot change state, no log line or
chart sample is due, and the strategy does not signal. For such a stretch every stage
still runs, in the same order and with the same float operations, but over the
feed's columns (CandleColumns) instead of once per candle:

  venue      `quiet(symbol)`: nothing to match (else the candle goes one by one)
  ledger     `quiet_marks`: the marks the liquidation check would pass; the last one
             is recorded (`mark_quietly`); unrealized PnL per mark (`unrealized_at`)
  metrics    the equity snapshots the per-candle path would take (same times, same
             values), added to the run's equity buffer as one block
  risk       `quiet_equities`: the snapshots inside its quiet band; the last is noted
  strategy   `on_candles` over the stretch, stopping after the first candle that
             signals; its signals become orders exactly as after that candle alone
  excursions the stretch's lowest low and highest high (the worst and best prices
             of the open trade are monotone in them, so one update is exact)

Each stage says how far the stretch may go before anything of the stages runs; the
first candle past it (a fill due, a mark near liquidation, a risk threshold, an hourly
log line, a chart sample, the run's end) goes through `_on_event` as before. The
results are the same bytes as candle by candle (tests/orchestrator/test_quiet.py runs
both ways); numpy is used for the per-stretch arrays, never for money the ledger books.

Only a run with one portfolio, no bar aggregation and no live listeners takes this
path, with a strategy that declares `candle_stretches` (it reads only its events).
"""

from collections.abc import Sequence
from time import perf_counter

import numpy as np

from perps_bot.domain import MarketEvent, Order, Signal
from perps_bot.feeds.bars import CandleAggregator
from perps_bot.feeds.columns import CandleColumns, FloatArray, IntArray
from perps_bot.orchestrator.clock import Clock
from perps_bot.orchestrator.portfolio import Portfolio
from perps_bot.orchestrator.venue_calls import VenueCalls

#: candles looked at per stretch: long enough to amortise the numpy calls, short
#: enough that a stretch cut short early wastes little
STRETCH = 256
_NO_ORDERS: list[Order] = []


class QuietStretches(VenueCalls):
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

    def _on_event(self, event: MarketEvent) -> list[Order]:
        raise NotImplementedError

    async def _event(self, event: MarketEvent, end: int) -> bool:
        raise NotImplementedError

    def _snapshot(self, ts: int) -> None:
        raise NotImplementedError

    async def _walk_columns(self, block: CandleColumns, end: int) -> bool:
        """Every event of `block` in the feed's order; False once the run's end is
        reached (like the per-event loop)."""
        i = 0
        limit = int(np.searchsorted(block.ts, end))  # candles from here on are past the end
        for at, other in [*block.inserts, (block.candles, None)]:
            while i < at:
                done = i
                if i < limit:
                    stop = min(at, limit, i + STRETCH)
                    done, orders, received = self._stretch(block, i, stop)
                if done > i:
                    i = done
                    if orders or self._cancel_due:
                        await self._submit_all(orders, received)
                    continue
                if not await self._event(block.candle(i), end):
                    return False
                i += 1
            if other is not None and not await self._event(other, end):
                return False
        return True

    def _stretch(self, block: CandleColumns, i: int, j: int) -> tuple[int, list[Order], float]:
        """Candles i..j-1 as far as they are quiet for every stage: returns the index
        after the last one handled (i: none, the caller takes candle i alone), the
        orders of a strategy signal on that last candle, and when the work started
        (tick-to-order latency)."""
        received = perf_counter()
        p = self.primary
        symbol = block.symbol
        next_equity = self._next_equity
        every = self._equity_every
        if (
            next_equity is None
            or next_equity % every
            or self._signalled
            or self._cancel_due
            or self._candle_bars is not None
            or self._account_rec is not None
            or len(self.portfolios) != 1
            or not p.strategy.candle_stretches
            or p.rec.listeners
            or not self.venue.quiet(symbol)
        ):
            return i, _NO_ORDERS, received
        n = p.ledger.quiet_marks(symbol, block.marks[i:j])
        if n == 0:
            return i, _NO_ORDERS, received
        at = snapshot_positions(block, i, i + n, next_equity, every)
        snap_ts = block.ts[i:][at] if at is not None else block.ts[i : i + n]
        marks = block.marks[i:][at] if at is not None else block.marks[i : i + n]
        cash = p.ledger.wallet_balance()
        unrealized = p.ledger.unrealized_at(symbol, marks)
        # the first snapshot the full path takes (log line due, risk state may change)
        assert self._next_log is not None
        full = min(
            p.risk.quiet_equities(snap_ts, cash + unrealized),
            int(np.searchsorted(snap_ts, self._next_log)),
        )
        if full < snap_ts.shape[0]:
            n = (int(at[full]) if at is not None else full) + 1
        done, signals = self._strategy_stretch(block, i, i + n, snap_ts[:full])
        taken = int(np.searchsorted(at, done - i)) if at is not None else done - i
        self._catch_up(block, i, done, snap_ts[: min(taken, full)], cash, unrealized)
        if taken > full:
            self._snapshot(int(snap_ts[full]))
        if not signals:
            return done, _NO_ORDERS, received
        self._signal(p, signals)
        return done, self._pending_orders(int(block.ts[done - 1])), received

    def _strategy_stretch(
        self, block: CandleColumns, start: int, stop: int, snap_ts: IntArray
    ) -> tuple[int, Sequence[Signal]]:
        """The strategy over candles start..stop-1, paused at every chart sample due
        among the quiet snapshots `snap_ts` (a sample reads the strategy's indicators
        and the last price as they are after that candle)."""
        p = self.primary
        plot = p.plot
        close = block.close
        ts = block.ts
        while True:
            due = int(np.searchsorted(snap_ts, plot.next_ts))
            if due == snap_ts.shape[0]:
                return p.strategy.on_candles(block, start, stop)
            sample_ts = int(snap_ts[due])
            at = start + int(np.searchsorted(ts[start:stop], sample_ts))
            done, signals = p.strategy.on_candles(block, start, at + 1)
            if done <= at:
                return done, signals  # signalled before the sample
            self._last_price[block.symbol] = float(close[at])
            plot.sample(sample_ts)
            if signals or done == stop:
                return done, signals
            start = done

    def _catch_up(
        self,
        block: CandleColumns,
        i: int,
        done: int,
        snap_ts: IntArray,
        cash: float,
        unrealized: FloatArray,
    ) -> None:
        """Every stage but the strategy takes candles i..done-1 at once (the quiet
        snapshots among them: `snap_ts`)."""
        p = self.primary
        symbol = block.symbol
        last = done - 1
        ts_last = int(block.ts[last])
        self.clock.advance(ts_last)
        self.last_ts = ts_last
        self._last_price[symbol] = float(block.close[last])
        p.risk.on_market_data(symbol, ts_last)
        p.excursions.on_prices(
            symbol, float(block.low[i:done].min()), float(block.high[i:done].max())
        )
        p.ledger.mark_quietly(symbol, float(block.marks[last]))
        taken = snap_ts.shape[0]
        if taken:
            unrealized = unrealized[:taken]
            equity = cash + unrealized
            p.rec.equity_rows(snap_ts, cash, unrealized, equity)
            p.risk.quiet_equity(float(equity[-1]))
            self._next_equity = (int(snap_ts[-1]) // self._equity_every + 1) * self._equity_every


def snapshot_positions(
    block: CandleColumns, start: int, stop: int, next_equity: int, every: int
) -> IntArray | None:
    """Which of candles start..stop-1 take an equity snapshot, relative to start (the
    first candle of each interval of `every` from `next_equity` on, as `_on_event`
    decides one candle at a time); None when all of them do."""
    ts = block.ts[start:stop]
    if block.one_per_interval(every) and ts[0] >= next_equity:
        return None
    first = next_equity // every
    buckets = ts // every
    previous = np.empty(buckets.shape[0], dtype=np.int64)
    previous[0] = first - 1
    previous[1:] = buckets[:-1]
    return np.flatnonzero((buckets != previous) & (buckets >= first))
