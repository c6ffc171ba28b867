"""The orchestrator: every market event goes through the same stages, whatever the
profile (SPEC 2):

  feed -> execution venue matches what was resting (fills -> ledger)
       -> ledger marks to market (liquidations) and settles funding
       -> strategy (signals) -> risk gate (approve / resize / deny)
       -> execution venue (orders) -> ledger and metrics (equity, PnL, journal)

Venue and feed are injected; nothing here knows which profile runs. The per-event
path is synchronous and allocation-light (a backtest pushes millions of events
through it); only order submission and live polling are awaited.
"""

import asyncio
import logging
from collections.abc import Sequence

from perps_bot.domain import (
    BookSnapshot,
    Candle,
    DenialReason,
    Fill,
    FundingRate,
    MarketEvent,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    Signal,
    TargetPosition,
    TradingState,
    event_price,
)
from perps_bot.feeds import Feed
from perps_bot.feeds.bars import BarBuilder, CandleAggregator
from perps_bot.ledger import FillResult, Ledger
from perps_bot.orchestrator.clock import Clock
from perps_bot.orchestrator.excursions import ExcursionTracker
from perps_bot.orchestrator.plot_sampler import PlotSampler
from perps_bot.orchestrator.recorder import Recorder
from perps_bot.risk import RiskGate
from perps_bot.strategies import Strategy
from perps_bot.venues import OrderRejected, Venue, VenueFatal, VenueUnavailable

_NO_ORDERS: list[Order] = []
#: positions smaller than this (base units) are treated as flat when diffing targets
_SIZE_EPSILON = 1e-12


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
        recorder: Recorder,
        clock: Clock,
        equity_interval_ms: int,
        log_equity_interval_ms: int,
        bar_timeframe_ms: int | None,
        end_ms: int | None,
        client_prefix: str,
        poll_interval_ms: int = 1_000,
        durable_fills: bool = True,
        candle_bar_ms: int | None = None,
    ) -> None:
        self.feed = feed
        self.venue = venue
        self.strategy = strategy
        self.risk = risk
        self.ledger = ledger
        self.rec = recorder
        self.clock = clock
        self.log = logging.getLogger("perps_bot.orchestrator")
        self._equity_every = equity_interval_ms
        self._log_every = log_equity_interval_ms
        self._next_equity: int | None = None
        self._next_log: int | None = None
        self._bars = BarBuilder(bar_timeframe_ms) if bar_timeframe_ms else None
        # candles finer than the strategy's timeframe: the strategy sees the bars
        self._candle_bars = CandleAggregator(candle_bar_ms) if candle_bar_ms else None
        self._end_ms = end_ms
        self._prefix = client_prefix
        self._seq = 0
        self._last_price: dict[str, float] = {}
        self._excursions = ExcursionTracker(recorder.run_id, recorder.store)
        self._plot = PlotSampler(strategy, self._last_price, equity_interval_ms)
        self._poll_every = poll_interval_ms
        # Live fills are committed as they happen (a crash must not lose an acknowledged
        # fill); simulated runs batch their writes, a rerun reproduces them exactly.
        self._durable_fills = durable_fills
        self._next_poll = 0
        self._reconnects_seen = 0
        self._started = False
        self.stop_requested = False
        self.stop_reason = ""
        self.first_ts: int | None = None
        self.last_ts: int | None = None

    # -- the loop ------------------------------------------------------------------
    async def start(self, *, reconcile: bool = False) -> None:
        """Start the venue once; live runs then adopt the venue's account before trading."""
        if self._started:
            return
        self._started = True
        await self.venue.start()
        if reconcile:
            await self.reconcile("start")

    async def run(self) -> None:
        await self.start()
        try:
            await self._submit_all(self._signals(self.strategy.on_start(), self.clock.now()))
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
                # yield to the event loop between batches (signals, timers, I/O)
                await asyncio.sleep(0)
            else:
                if self._end_ms is not None and self.last_ts is not None:
                    self.last_ts = self._end_ms  # the feed ran to the end of [start, end)
            await self._submit_all(self._signals(self.strategy.on_stop(), self.clock.now()))
        finally:
            await self.feed.stop()
            await self.venue.stop()
            if self.last_ts is not None:
                self.rec.equity(self.last_ts, log_line=True)
                self._plot.sample(self.last_ts)
            self._plot.write(self.rec.store, self.rec.run_id)
            self.rec.flush()

    def request_stop(self, reason: str) -> None:
        self.stop_requested = True
        self.stop_reason = reason

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
        return self._signals(signals, ts)

    def _apply_liquidations(self, liquidations: list[tuple[Fill, FillResult]]) -> list[Signal]:
        signals: list[Signal] = []
        for fill, result in liquidations:
            before = result.position_after + (-fill.side.sign * fill.size)
            self._record_fill(fill, result, before)
            signals.extend(self.strategy.on_fill(fill))
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

    # -- fills ---------------------------------------------------------------------
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

    # -- signals -> risk -> orders -------------------------------------------------
    def _signals(self, signals: Sequence[Signal], ts: int) -> list[Order]:
        orders: list[Order] = []
        for signal in signals:
            intent = self._intent(signal)
            if intent is None:
                continue
            self._seq += 1
            cid = f"{self._prefix}{self._seq}"
            price = self._last_price.get(intent.symbol, 0.0)
            self.rec.signal(ts, intent.symbol, str(intent.side), intent.size, intent.reason, cid)
            if price <= 0:
                self.rec.denial(
                    ts,
                    intent.symbol,
                    DenialReason.STALE_MARKET_DATA,
                    "no price seen yet for the symbol",
                    cid,
                )
                continue
            decision = self.risk.check(intent, ts, price)
            if not decision.approved:
                self.rec.denial(ts, intent.symbol, decision.reason, decision.detail, cid)
                continue
            orders.append(
                Order(
                    client_id=cid,
                    symbol=intent.symbol,
                    side=intent.side,
                    size=decision.size,
                    order_type=intent.order_type,
                    price=intent.limit_price if intent.order_type is OrderType.LIMIT else None,
                    reduce_only=intent.reduce_only,
                    created_ts=ts,
                    correlation_id=cid,
                    reason=intent.reason,
                    stop_price=intent.stop_price,
                )
            )
        return orders

    def _intent(self, signal: Signal) -> OrderIntent | None:
        if isinstance(signal, OrderIntent):
            return signal
        assert isinstance(signal, TargetPosition)
        current = self.ledger.position_size(signal.symbol) + self._in_flight(signal.symbol)
        delta = signal.size - current
        if abs(delta) <= _SIZE_EPSILON:
            return None
        reducing = signal.size * current >= 0 and abs(signal.size) < abs(current)
        return OrderIntent(
            symbol=signal.symbol,
            side=Side.for_delta(delta),
            size=abs(delta),
            order_type=OrderType.MARKET,
            reduce_only=reducing,
            reason=signal.reason,
            stop_price=signal.stop_price,
        )

    def _in_flight(self, symbol: str) -> float:
        """Signed quantity of this symbol's open orders that has not filled yet."""
        return sum(
            o.side.sign * o.remaining for o in self.venue.open_orders() if o.symbol == symbol
        )

    async def _submit_all(self, orders: list[Order]) -> None:
        for order in orders:
            try:
                ack = await self.venue.submit(order)
            except OrderRejected as exc:
                order.status = OrderStatus.REJECTED
                self.rec.order(order)
                self.rec.denial(
                    order.created_ts, order.symbol, exc.reason, exc.detail, order.correlation_id
                )
                continue
            except VenueUnavailable as exc:
                order.status = OrderStatus.REJECTED
                self.rec.order(order)
                self.rec.denial(
                    order.created_ts,
                    order.symbol,
                    DenialReason.CIRCUIT_BREAKER_OPEN,
                    f"venue unavailable: {exc}",
                    order.correlation_id,
                )
                self._sync_breaker()
                continue
            except VenueFatal as exc:
                self.log.error("venue refused us for good: %s", exc)
                raise StopRun(str(exc)) from exc
            self.rec.order(ack)
        self._sync_breaker()

    def _sync_breaker(self) -> None:
        self.risk.set_circuit_breaker(bool(getattr(self.venue, "circuit_open", False)))

    async def _poll(self) -> None:
        now = self.clock.now()
        if now < self._next_poll:
            return
        self._next_poll = now + self._poll_every
        try:
            fills = await self.venue.poll(now)
        except VenueUnavailable as exc:
            self.log.warning("venue poll failed: %s", exc)
            self._sync_breaker()
            return
        except VenueFatal as exc:
            self.log.error("venue refused us for good: %s", exc)
            raise StopRun(str(exc)) from exc
        self._sync_breaker()
        if fills:
            signals = self._apply_fills(fills)
            await self._submit_all(self._signals(signals, now))
        reconnects = int(getattr(self.venue, "reconnects", 0))
        if reconnects != self._reconnects_seen:
            self._reconnects_seen = reconnects
            await self.reconcile("reconnect")

    # -- reconciliation ------------------------------------------------------------
    async def reconcile(self, why: str) -> None:
        """Adopt the venue's view of positions (live venues are the source of truth)."""
        try:
            snap = await self.venue.snapshot()
        except (VenueUnavailable, OrderRejected) as exc:
            self.log.warning("reconciliation (%s) failed: %s", why, exc)
            return
        venue_positions = {p.symbol: (p.size, p.entry_price) for p in snap.positions}
        mismatched = [
            s
            for s in set(venue_positions) | set(self.ledger.symbols())
            if abs(venue_positions.get(s, (0.0, 0.0))[0] - self.ledger.position_size(s)) > 1e-9
        ]
        balance = snap.balance if snap.balance is not None else self.ledger.wallet_balance()
        if mismatched or snap.balance is not None:
            if mismatched:
                self.log.warning(
                    "reconciliation (%s): adopting venue positions for %s",
                    why,
                    ", ".join(sorted(mismatched)),
                )
            self.ledger.restore(balance, venue_positions)
        ts = self.clock.now()
        self.rec.journal.write(
            "reconcile",
            ts,
            {
                "why": why,
                "balance": balance,
                "positions": {s: list(v) for s, v in sorted(venue_positions.items())},
                "open_orders": len(snap.open_orders),
                "mismatched": sorted(mismatched),
            },
        )
        for symbol, (size, entry) in venue_positions.items():
            self._excursions.on_position(symbol, ts, 0.0, size, entry)

    @property
    def trading_state(self) -> TradingState:
        return self.risk.state
