"""The orchestrator: every market event goes through the same stages, whatever the
mode (SPEC 2):

  feed -> execution venue matches what was resting (fills -> ledger)
       -> ledger marks to market (liquidations, paper modes) and settles funding
       -> strategy (signals) -> risk gate (approve / resize / deny)
       -> instrument rules -> execution venue (orders) -> ledger and metrics

Venue, feed and instruments are injected; nothing here knows which mode runs. The
per-event path is synchronous and allocation-light (a backtest pushes millions of
events through it); only order submission and live polling are awaited. Order
lifecycle changes the venue reports (`venue.updates`) are drained after every call
into the venue: stored, journaled, and shown to the strategy (`on_order_update`).
"""

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from perps_bot.domain import (
    BookSnapshot,
    Candle,
    DenialReason,
    Fill,
    FundingRate,
    Instrument,
    MarketEvent,
    Order,
    OrderUpdate,
    Quote,
    Signal,
    TradingState,
    event_price,
)
from perps_bot.feeds import Feed
from perps_bot.feeds.bars import BarBuilder, CandleAggregator
from perps_bot.ledger import FillResult, Ledger
from perps_bot.orchestrator.clock import Clock
from perps_bot.orchestrator.excursions import ExcursionTracker, NoExcursions
from perps_bot.orchestrator.order_flow import OrderFlow
from perps_bot.orchestrator.plot_sampler import PlotSampler
from perps_bot.orchestrator.reconcile import reconcile
from perps_bot.orchestrator.recorder import Recorder
from perps_bot.risk import RiskGate
from perps_bot.strategies import Strategy
from perps_bot.venues import OrderRejected, Venue, VenueFatal, VenueUnavailable

_NO_ORDERS: list[Order] = []
#: exchange fills are looked for from a little before the last reconciliation (clocks
#: differ); fills already booked are not booked twice (the venue hands each out once)
RECONCILE_LOOKBACK_MS = 60_000


def _joined(signals: list[Signal] | None, more: Sequence[Signal]) -> list[Signal]:
    if signals is None:
        return list(more)
    signals.extend(more)
    return signals


class StopRun(Exception):
    """Raised inside the loop to end the run early with a reason (e.g. venue fatal)."""


class Orchestrator:
    def __init__(
        self,
        *,
        feed: Feed,
        venue: Venue,
        strategy: Strategy,
        risk: RiskGate,
        ledger: Ledger,
        instruments: Mapping[str, Instrument],
        recorder: Recorder,
        clock: Clock,
        equity_interval_ms: int,
        log_equity_interval_ms: int,
        bar_timeframe_ms: int | None,
        end_ms: int | None,
        client_prefix: str,
        poll_interval_ms: int = 1_000,
        reconcile_interval_ms: int | None = None,
        durable_fills: bool = True,
        candle_bar_ms: int | None = None,
        details: bool = True,
    ) -> None:
        """`details=False` (run.record: metrics): no MAE/MFE rows, no price series."""
        self.feed = feed
        self.venue = venue
        self.strategy = strategy
        self.risk = risk
        self.ledger = ledger
        self.rec = recorder
        self.clock = clock
        self.log = logging.getLogger("perps_bot.orchestrator")
        self.flow = OrderFlow(
            risk=risk,
            ledger=ledger,
            venue=venue,
            instruments=instruments,
            recorder=recorder,
            client_prefix=client_prefix,
        )
        self._updates = venue.updates  # the venue appends; drained after each call
        self._equity_every = equity_interval_ms
        self._log_every = log_equity_interval_ms
        self._next_equity: int | None = None
        self._next_log: int | None = None
        self._bars = BarBuilder(bar_timeframe_ms) if bar_timeframe_ms else None
        # candles finer than the strategy's timeframe: the strategy sees the bars
        self._candle_bars = CandleAggregator(candle_bar_ms) if candle_bar_ms else None
        self._end_ms = end_ms
        self._last_price: dict[str, float] = {}
        tracker = ExcursionTracker if details else NoExcursions
        self._excursions = tracker(recorder.run_id, recorder.store)
        self._plot = PlotSampler(strategy, self._last_price, equity_interval_ms)
        if not details:
            self._plot.next_ts = 2**62  # never samples
        self._poll_every = poll_interval_ms
        self._reconcile_every = reconcile_interval_ms
        # Live fills are committed as they happen (a crash must not lose an acknowledged
        # fill); simulated runs batch their writes, a rerun reproduces them exactly.
        self._durable_fills = durable_fills
        self._next_poll = 0
        self._next_reconcile: int | None = None
        self._reconciled_at: int | None = None  # the books matched the venue then
        self._reconnects_seen = 0
        self._started = False
        self._closed = False
        self.stop_requested = False
        self.stop_reason = ""
        self._feed_stopping: asyncio.Task[None] | None = None
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        #: called between batches (paper runs: wall-time flushes and checkpoints)
        self.after_batch: Callable[[], None] | None = None
        self.resumed = False  # restored from a checkpoint: on_start was already called

    # -- the loop ------------------------------------------------------------------
    async def start(self, *, reconcile: bool = False) -> None:
        """Start the venue once; live runs then adopt the venue's account before trading."""
        if self._started:
            return
        self._started = True
        try:
            await self.venue.start()
        except VenueFatal as exc:
            self.log.error("venue cannot start: %s", exc)
            raise StopRun(str(exc)) from exc
        if reconcile:
            await self.reconcile("start")

    async def run(self) -> None:
        await self.start()
        try:
            if not self.resumed:
                await self._submit_all(self._orders(self.strategy.on_start(), self.clock.now()))
            async for batch in self.feed.batches():
                for event in batch:
                    ts = event.ts
                    if self._end_ms is not None and ts >= self._end_ms:
                        self.stop_requested = True
                        self.stop_reason = "duration reached"
                        # the run covered [start, end): it ends at end, not at the last tick
                        self.last_ts = self._end_ms
                        break
                    orders = self._on_event(event)
                    if orders:
                        await self._submit_all(orders)
                if self.venue.needs_polling:
                    await self._poll()
                self.rec.view.tick(*self.feed.progress())
                self.rec.flush_log()
                if self.stop_requested:
                    break
                if self.after_batch is not None:
                    self.after_batch()
                # yield to the event loop between batches (signals, timers, I/O)
                await asyncio.sleep(0)
            else:
                ran_out = not self.stop_requested  # not stopped early by request_stop
                if ran_out and self._end_ms is not None and self.last_ts is not None:
                    self.last_ts = self._end_ms  # the feed ran to the end of [start, end)
            await self._submit_all(self._orders(self.strategy.on_stop(), self.clock.now()))
        finally:
            await self.close()
            if self.last_ts is not None:
                self.rec.equity(self.last_ts, log_line=True)
                self._plot.sample(self.last_ts)
            self._plot.write(self.rec.store, self.rec.run_id)
            self.rec.flush()

    async def close(self) -> None:
        """Stop feed and venue once (also when the run failed before its loop started);
        record what the venue closed on stopping (paper: "end of run")."""
        if self._closed:
            return
        self._closed = True
        if self._feed_stopping is not None:
            await self._feed_stopping
        else:
            await self.feed.stop()
        await self.venue.stop()
        self._record_updates()

    def request_stop(self, reason: str) -> None:
        """End the run after the current batch (Ctrl-C, SIGTERM, duration). A feed that is
        waiting for data (an exchange that does not answer) is stopped too, so the loop
        notices at once."""
        self.stop_requested = True
        self.stop_reason = reason
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not inside the run's loop: the loop checks the flag
            return
        if self._feed_stopping is None:
            self._feed_stopping = loop.create_task(self.feed.stop())

    # -- one event -----------------------------------------------------------------
    def _on_event(self, event: MarketEvent) -> list[Order]:
        """One event through every stage. The hot path of a backtest (one call per
        candle): stages are still separate calls, but the common case allocates
        nothing (no signal list unless a stage returns signals)."""
        ts = event.ts
        symbol = event.symbol
        self.clock.advance(ts)
        if self.first_ts is None:
            self.first_ts = ts
            self._next_equity = ts
            self._next_log = ts + self._log_every
        self.last_ts = ts
        self.risk.on_market_data(symbol, ts)

        # execution: resting / queued orders meet the new prices
        fills = self.venue.on_market(event)
        signals: list[Signal] | None = self._apply_fills(fills) if fills else None
        if self._updates:
            signals = _joined(signals, self._drain_updates())

        # ledger: mark to market, funding, liquidation
        mark: float | None
        for_strategy: MarketEvent | None = event
        if isinstance(event, Candle):
            price = event.close
            mark = event.mark if event.mark is not None else price
            self._excursions.on_prices(symbol, event.low, event.high)
            if self._candle_bars is not None:
                for_strategy = self._candle_bars.add(event)
        elif isinstance(event, Quote | BookSnapshot):
            traded = event_price(event)
            mark = event.mark if event.mark is not None else traded
            price = traded if traded is not None else self._last_price.get(symbol, 0.0)
            if traded is not None:
                self._excursions.on_prices(symbol, traded, traded)
                if self._bars is not None:
                    bar = self._bars.update(symbol, ts, traded, traded if mark is None else mark)
                    if bar is not None:
                        signals = _joined(signals, self.strategy.on_event(bar))
        elif isinstance(event, FundingRate):
            price = self._last_price.get(symbol, event.mark)
            mark = event.mark
            settled = self.ledger.apply_funding(ts, symbol, event.rate, event.mark)
            if settled is not None:
                self.rec.funding(ts, symbol, settled)
        else:
            price = self._last_price.get(symbol, event.mark)
            mark = event.mark
        if price:
            self._last_price[symbol] = price
        if mark:
            liquidations = self.ledger.update_mark(symbol, mark, ts)
            if liquidations:
                signals = _joined(signals, self._apply_liquidations(liquidations))

        # strategy
        if for_strategy is not None:
            out = self.strategy.on_event(for_strategy)
            if out:
                signals = _joined(signals, out)

        # metrics: equity snapshots on the (simulated) clock
        next_equity = self._next_equity
        if next_equity is not None and ts >= next_equity:
            self._snapshot(ts)

        if not signals:
            return _NO_ORDERS
        return self._orders(signals, ts)

    def _apply_liquidations(self, liquidations: list[tuple[Fill, FillResult]]) -> list[Signal]:
        """The ledger liquidated (paper modes): record it, cancel the symbol's orders as an
        exchange does, and tell the strategy."""
        signals: list[Signal] = []
        for fill, result in liquidations:
            before = result.position_after + (-fill.side.sign * fill.size)
            self._record_fill(fill, result, before)
            self.venue.on_liquidation(fill.symbol, fill.ts)
            signals.extend(self.strategy.on_fill(fill))
        if self._updates:
            signals.extend(self._drain_updates())
        return signals

    def _snapshot(self, ts: int) -> None:
        """One equity row per equity interval (runs every simulated minute: kept lean)."""
        assert self._next_log is not None
        every = self._equity_every
        self._next_equity = ts - ts % every + every
        log_line = ts >= self._next_log
        if log_line:
            self._next_log = ts - ts % self._log_every + self._log_every
        equity = self.rec.equity(ts, log_line=log_line)
        if ts >= self._plot.next_ts:
            self._plot.sample(ts)
        new_state = self.risk.on_equity(ts, equity)
        if new_state is not None:
            self.rec.state_change(ts, str(new_state), f"equity {equity:.2f}")

    # -- fills and order updates ------------------------------------------------------
    def _apply_fills(self, fills: Sequence[Fill]) -> list[Signal]:
        signals: list[Signal] = []
        for fill in fills:
            before = self.ledger.position_size(fill.symbol)
            result = self.ledger.apply_fill(fill)
            self._record_fill(fill, result, before)
            signals.extend(self.strategy.on_fill(fill))
        self.rec.equity(fills[-1].ts, log_line=False)
        if self._durable_fills:
            self.rec.flush()
        return signals

    def _record_fill(self, fill: Fill, result: FillResult, before: float) -> None:
        self.rec.fill(fill, result)
        self._excursions.on_prices(fill.symbol, fill.price, fill.price)
        self._excursions.on_position(
            fill.symbol, fill.ts, before, result.position_after, result.entry_after
        )

    def _drain_updates(self) -> list[Signal]:
        """Store the venue's order updates and show them to the strategy."""
        signals: list[Signal] = []
        for update in self._take_updates():
            self.rec.order_update(update)
            signals.extend(self.strategy.on_order_update(update))
        return signals

    def _record_updates(self) -> None:
        for update in self._take_updates():
            self.rec.order_update(update)

    def _take_updates(self) -> list[OrderUpdate]:
        updates = list(self._updates)
        self._updates.clear()
        return updates

    # -- signals -> risk -> orders -------------------------------------------------
    def _orders(self, signals: Sequence[Signal], ts: int) -> list[Order]:
        return self.flow.orders(signals, ts, self._last_price)

    async def _submit_all(self, orders: list[Order]) -> None:
        """Send approved orders; a refusal becomes a denial with the venue's reason.

        Live (durable) runs commit each order's intent before its request leaves, and take
        the fills its reply already carries at once (a market order's reply has its
        fill): a crash between the two loses nothing the exchange confirmed."""
        while orders:
            more: list[Signal] = []
            for order in orders:
                self.rec.order(order)
                if self._durable_fills:
                    self.rec.flush()
                await self._submit(order)
                more.extend(self._drain_updates())
                if self.venue.needs_polling:
                    more.extend(await self._collect(self.clock.now()))
            orders = self._orders(more, self.clock.now()) if more else []

    async def _submit(self, order: Order) -> None:
        try:
            await self.venue.submit(order)
        except OrderRejected as exc:
            self.rec.denial(
                order.created_ts, order.symbol, exc.reason, exc.detail, order.correlation_id
            )
        except VenueUnavailable as exc:
            self.rec.denial(
                order.created_ts,
                order.symbol,
                DenialReason.CIRCUIT_BREAKER_OPEN,
                f"venue unavailable: {exc}",
                order.correlation_id,
            )
        except VenueFatal as exc:
            self.log.error("venue refused us for good: %s", exc)
            raise StopRun(str(exc)) from exc
        finally:
            self.risk.set_circuit_breaker(self.venue.circuit_open)

    async def _collect(self, now: int) -> list[Signal]:
        """Fills and order updates the venue has for us (it asks the exchange only when its
        poll interval has passed); booked and stored, the strategy's answers returned."""
        try:
            fills = await self.venue.poll(now)
        except VenueUnavailable as exc:
            self.log.warning("venue poll failed: %s", exc)
            fills = ()
        except VenueFatal as exc:
            self.log.error("venue refused us for good: %s", exc)
            raise StopRun(str(exc)) from exc
        finally:
            self.risk.set_circuit_breaker(self.venue.circuit_open)
        signals = self._apply_fills(fills) if fills else []
        signals.extend(self._drain_updates())
        return signals

    async def _poll(self) -> None:
        now = self.clock.now()
        if now < self._next_poll:
            return
        self._next_poll = now + self._poll_every
        signals = await self._collect(now)
        if signals:
            await self._submit_all(self._orders(signals, now))
        if self.venue.reconnects != self._reconnects_seen:
            self._reconnects_seen = self.venue.reconnects
            await self.reconcile("reconnect")
        elif self._reconcile_every is not None:
            if self._next_reconcile is None:
                self._next_reconcile = now + self._reconcile_every
            elif now >= self._next_reconcile:
                await self.reconcile("periodic")

    # -- reconciliation ------------------------------------------------------------
    async def reconcile(self, why: str) -> list[str]:
        """Bring the books to the venue's account (live venues are the source of truth);
        exchange fills no order of ours explains are booked and shown to the strategy."""
        now = self.clock.now()
        if self._reconcile_every is not None:
            self._next_reconcile = now + self._reconcile_every
        signals: list[Signal] = []

        def book(fills: Sequence[Fill]) -> None:
            signals.extend(self._apply_fills(fills))

        since = self._reconciled_at
        differed = await reconcile(
            why,
            now,
            venue=self.venue,
            ledger=self.ledger,
            recorder=self.rec,
            excursions=self._excursions,
            since_ms=None if since is None else since - RECONCILE_LOOKBACK_MS,
            book=book,
        )
        self._reconciled_at = now
        if signals:
            await self._submit_all(self._orders(signals, now))
        return differed

    @property
    def trading_state(self) -> TradingState:
        return self.risk.state

    # -- checkpoints (SPEC 9) ------------------------------------------------------
    def loop_state(self) -> tuple[object, ...]:
        """The loop's own state between batches, for a checkpoint: the next equity row
        and log line, bars being built, last prices, open excursions, the client id
        counter, first and last event time, the clock."""
        bars = self._bars.state() if self._bars is not None else None
        return (self._next_equity, self._next_log, bars, self._last_price,
                self._excursions.state(), self.flow.seq, self.first_ts, self.last_ts,
                self.clock.now())  # fmt: skip

    def restore_loop_state(self, state: Any) -> None:
        """Go on from `loop_state()`; the strategy is not started again."""
        next_equity, next_log, bars, prices, excursions, seq, first, last, now = state
        self._next_equity, self._next_log = next_equity, next_log
        if self._bars is not None and bars is not None:
            self._bars.restore_state(bars)
        self._last_price = dict(prices)
        self._excursions.restore_state(excursions)
        self.flow.seq = int(seq)
        self.first_ts, self.last_ts = first, last
        self.clock.advance(int(now))
        self.resumed = True
