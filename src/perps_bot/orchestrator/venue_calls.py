"""The orchestrator's side of the venue (SPEC 2, 8, 9): fills booked to the portfolio
whose order they filled, order updates stored and shown to its strategy, orders sent
(live: each intent committed before its request leaves), fills and updates polled,
and reconciliation with the venue's account; the protective orders these bring in
step are sent by its base, orchestrator.protective_orders.

A mixin of `Orchestrator` (orchestrator.engine), kept apart from the event loop: the
attributes below are the engine's, declared here for the type checker.
"""

import logging
from collections.abc import Callable, Sequence
from time import perf_counter

from perps_bot.domain import (
    Candle,
    DenialReason,
    Fill,
    Order,
    OrderUpdate,
    Signal,
    TradingState,
)
from perps_bot.domain.enums import UNKNOWN
from perps_bot.ledger import FillResult
from perps_bot.orchestrator.clock import Clock
from perps_bot.orchestrator.portfolio import Portfolio
from perps_bot.orchestrator.protective_orders import ProtectiveOrders
from perps_bot.orchestrator.reconcile import ReconcileFailed, reconcile
from perps_bot.orchestrator.recorder import Recorder
from perps_bot.orchestrator.routing import Routes
from perps_bot.venues import OrderRejected, Venue, VenueFatal, VenueUnavailable

#: exchange fills are looked for from a little before the last reconciliation (clocks
#: differ); fills already booked are not booked twice (the venue hands each out once)
RECONCILE_LOOKBACK_MS = 60_000


class StopRun(Exception):
    """Raised inside the loop to end the run early with a reason (e.g. venue fatal)."""


class VenueCalls(ProtectiveOrders):
    venue: Venue
    routes: Routes
    portfolios: list[Portfolio]
    rec: Recorder
    clock: Clock
    log: logging.Logger
    _account_rec: Recorder | None
    _updates: list[OrderUpdate]
    _signalled: list[Portfolio]
    _durable_fills: bool
    _save_fills: Callable[[], None] | None
    _poll_every: int
    _next_poll: int
    _reconcile_every: int | None
    _next_reconcile: int | None
    _reconciled_at: int | None
    _reconnects_seen: int
    _cancel_due: bool
    _started: bool
    _wick_walked: Candle | None  # the last candle checked point by point (candle_walks)

    def _signal(self, portfolio: Portfolio, signals: Sequence[Signal]) -> None:
        raise NotImplementedError

    def _pending_orders(self, ts: int) -> list[Order]:
        raise NotImplementedError

    def _entry_sent(self, symbol: str) -> None:
        raise NotImplementedError

    def store_fills_with(self, save: Callable[[], None]) -> None:
        """A paper run (it takes checkpoints) on the wall clock, a dry run: its fills are
        stored with the checkpoint `save` asks for at the end of their batch, in one
        transaction, not at once. A resume goes back to the last checkpoint and cannot
        replay a live market: a fill stored after that checkpoint was deleted by the
        resume, and the run went on without it (or traded again). A run on the
        simulated clock replays its events exactly: its fills stay batched."""
        if self._durable_fills:
            self._durable_fills, self._save_fills = False, save

    def _apply_fills(self, fills: Sequence[Fill]) -> None:
        touched: list[Portfolio] = []
        self._book_fills(fills, touched)
        self._fills_booked(fills, touched)

    def _book_fills(self, fills: Sequence[Fill], touched: list[Portfolio]) -> None:
        """The fills into their portfolios' books (and strategies); `touched` gets each
        portfolio the first time one of its fills is booked."""
        for fill in fills:
            p = self.routes.owner(fill.client_id, fill.symbol)
            self._signal(p, p.book_fill(fill))
            if p not in touched:
                touched.append(p)
                self._wake(p)

    def _fills_booked(self, fills: Sequence[Fill], touched: list[Portfolio]) -> None:
        """What follows the booking of `fills` (one event's, booked by `_book_fills`
        into `touched`): the equity rows, protective orders, the store."""
        ts = fills[-1].ts
        for p in touched:
            p.rec.equity(ts, log_line=False)
            self._protect(p, {f.symbol for f in fills}, ts)
        if self._account_rec is not None:
            self._account_rec.equity(ts, log_line=False)
        if self._durable_fills:
            for p in touched:
                p.rec.flush()
        elif self._save_fills is not None:
            self._save_fills()
        self._restate_waiting()  # a resume that waited for this close to be booked

    def _mark_wick(self, p: Portfolio, candle: Candle, ts: int) -> None:
        """A mark series' low and high inside the candle (`--mark`): a mark that went past
        the liquidation price and closed back inside it liquidates all the same. The low
        first: a symbol holds one side, so only its adverse extreme can liquidate. Not
        for a candle the ledger already checked point by point (`_wick_walked`:
        orchestrator.long_candles), where a position opened after an extreme never saw it."""
        if candle is self._wick_walked:
            return
        for extreme in (candle.mark_low, candle.mark_high):
            if extreme is not None:
                liquidations = p.ledger.update_mark(candle.symbol, extreme, ts)
                if liquidations:
                    self._apply_liquidations(p, liquidations)

    def _apply_liquidations(
        self, portfolio: Portfolio, liquidations: Sequence[tuple[Fill, FillResult]]
    ) -> None:
        """The ledger liquidated (paper modes): record it, cancel the portfolio's orders of
        the symbol as an exchange does, and tell the strategy."""
        for fill, result in liquidations:
            before = result.position_after + (-fill.side.sign * fill.size)
            portfolio.record_fill(fill, result, before)
            self.venue.on_liquidation(fill.symbol, fill.ts, portfolio.id)
            self._signal(portfolio, portfolio.strategy.on_fill(fill))
        if self._save_fills is not None:
            self._save_fills()
        if self._updates:
            self._drain_updates()

    def _drain_updates(self) -> None:
        """Store the venue's order updates and show them to their portfolio's strategy."""
        if not self._updates:
            return
        for update in self._take_updates():
            p = self._protect_update(update)
            self._signal(p, p.strategy.on_order_update(update))
            self._wake(p)
        self._restate_waiting()

    def _wake(self, portfolio: Portfolio) -> None:
        """A portfolio holding the entry of a flip back for its close (orchestrator.
        held_entries) looks again at each fill and order update: the close may be done."""
        if portfolio.flow.held.by_symbol and portfolio not in self._signalled:
            self._signalled.append(portfolio)

    def _record_updates(self) -> None:
        for update in self._take_updates():
            self._protect_update(update)

    def _protect_update(self, update: OrderUpdate) -> Portfolio:
        """Store an order update and show it to its portfolio's protection; a protective
        order the exchange refused halts the portfolio (orchestrator.protective_levels),
        and a halt withdraws the resting entries (`withdraw_if_stopped`)."""
        p = self.routes.owner(update.client_id, update.symbol)
        p.rec.order_update(update)
        was = p.risk.state
        p.protection.on_update(update)
        self.withdraw_if_stopped(p, was)
        return p

    def _take_updates(self) -> list[OrderUpdate]:
        updates = list(self._updates)
        self._updates.clear()
        return updates

    def _sync_breakers(self) -> None:
        is_open = self.venue.circuit_open
        for p in self.portfolios:
            p.risk.set_circuit_breaker(is_open)

    async def _submit_all(self, orders: list[Order], received: float | None = None) -> None:
        """Send approved orders; a refusal becomes a denial with the venue's reason.
        `received`: perf_counter() when the market event that caused them came in (each
        order's journal line carries the tick-to-order latency).

        Live (durable) runs commit each order's intent before its request leaves, and take
        the fills its reply already carries at once (a market order's reply has its
        fill): a crash between the two loses nothing the exchange confirmed."""
        while orders or self._cancel_due:
            if self._cancel_due:
                await self._cancel_protective()
            else:  # nothing to cancel (`_protect` sets the flag whenever there is)
                self._drain_updates()
            for order in orders:
                await self._send(order, received)
            orders = self._pending_orders(self.clock.now()) if self._signalled else []

    async def _send(self, order: Order, received: float | None) -> None:
        """One order of `_submit_all`: stored, sent, its updates drained. A protected
        entry sent in a candle run has its symbol's candles walked (`_entry_sent`)."""
        p = self.routes.placed(order)
        p.rec.order(order, None if received is None else perf_counter() - received)
        if self._durable_fills:
            p.rec.flush()
        refused = await self._submit(order, p)
        if refused is not None and refused[0] is not DenialReason.ORDER_STATUS_UNKNOWN:
            p.flow.held.withhold(order.created_ts, order, refused)  # a flip's entry
        elif refused is None and order.status.is_open and p.protection.asks(order.client_id):
            self._entry_sent(order.symbol)
        self._drain_updates()
        if self.venue.needs_polling:
            await self._collect(self.clock.now())

    async def _submit(
        self, order: Order, portfolio: Portfolio
    ) -> tuple[DenialReason | None, str] | None:
        """Send one order; None when the venue took it, else (code, detail) of why it did
        not, or may not have (its outcome unknown)."""
        rec = portfolio.rec
        refused: tuple[DenialReason | None, str] | None = None
        try:
            await self.venue.submit(order)
        except OrderRejected as exc:
            refused = (exc.reason, exc.detail)
        except VenueUnavailable as exc:
            refused = (DenialReason.CIRCUIT_BREAKER_OPEN, f"venue unavailable: {exc}")
        except VenueFatal as exc:
            self.log.error("venue refused us for good: %s", exc)
            raise StopRun(str(exc)) from exc
        finally:
            self._sync_breakers()
        if refused is not None:
            # under the order's own id (a flip's entry or a split close's later order is
            # not the first one's); a protective order's under the entry it protects
            own = order.correlation_id if order.order_type.is_trigger else order.client_id
            rec.denial(order.created_ts, order.symbol, *refused, own)
        elif order.status is UNKNOWN:
            refused = (DenialReason.ORDER_STATUS_UNKNOWN, f"order {order.client_id} has an"
                       " unknown outcome")  # fmt: skip
        return refused

    async def _collect(self, now: int) -> None:
        """Fills and order updates the venue has for us (it asks the exchange only when its
        poll interval has passed); booked and stored, the strategies' answers pending."""
        try:
            fills = await self.venue.poll(now)
        except VenueUnavailable as exc:
            self.log.warning("venue poll failed: %s", exc)
            fills = ()
        except VenueFatal as exc:
            self.log.error("venue refused us for good: %s", exc)
            raise StopRun(str(exc)) from exc
        finally:
            self._sync_breakers()
        if fills:
            self._apply_fills(fills)
        self._drain_updates()

    async def _poll(self) -> None:
        now = self.clock.now()
        if now < self._next_poll:
            return
        self._next_poll = now + self._poll_every
        await self._collect(now)
        for p in self.portfolios:  # an entry an earlier run held back waits for a price
            self._wake(p)
        if self._signalled:
            await self._submit_all(self._pending_orders(now))
        if self.venue.reconnects != self._reconnects_seen:
            self._reconnects_seen = self.venue.reconnects
            await self.reconcile("reconnect")
        elif self._reconcile_every is not None:
            if self._next_reconcile is None:
                self._next_reconcile = now + self._reconcile_every
            elif now >= self._next_reconcile:
                await self.reconcile("periodic")

    # -- reconciliation ------------------------------------------------------------
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
        except VenueUnavailable as exc:  # retries ran out: trading blind is not an option
            self.log.error("venue cannot start, the exchange is not answering: %s", exc)
            raise StopRun(f"the exchange is not answering at start-up: {exc}") from exc
        if reconcile:
            await self.reconcile("start")

    async def reconcile(self, why: str) -> list[str]:
        """Bring the books to the venue's account (live venues are the source of truth);
        exchange fills no order of ours explains are booked and shown to the strategy.
        An account that cannot be read is a warning mid-run (the next reconciliation
        tries again) and ends the run at start-up (StopRun): no order goes out on books
        never compared with the exchange's."""
        now = self.clock.now()
        if self._reconcile_every is not None:
            self._next_reconcile = now + self._reconcile_every
        since = self._reconciled_at
        was = [p.risk.state for p in self.portfolios]
        try:
            differed = await reconcile(
                why,
                now,
                venue=self.venue,
                portfolios=self.portfolios,
                recorder=self.rec,
                since_ms=(now if since is None else since) - RECONCILE_LOOKBACK_MS,
                adopt=since is None,
                book=self._apply_fills,
            )
        except ReconcileFailed as exc:
            if why == "start":
                raise StopRun(f"cannot reconcile with the exchange at start-up: {exc}") from exc
            differed = []
        else:
            self._reconciled_at = now
        self._drain_updates()  # the steps of orders whose fills the snapshot carried
        open_orders = self.venue.open_orders()
        if self.rec.capture is not None:  # those the run did not send, for its replay
            self.rec.capture.open_orders(open_orders)
        for p in self.portfolios:
            p.protection.adopt(
                o for o in open_orders if self.routes.owner(o.client_id, o.symbol) is p
            )
            self._protect(p, p.protection.symbols(), now)
        for p, state in zip(self.portfolios, was, strict=True):
            # a position it cannot attribute halts it; at the start, the state the run
            # restored (a halt stored by an earlier run) withdraws what that run left;
            # a halted portfolio's entries still resting (a withdrawal's cancel that
            # failed) are withdrawn again at each reconciliation
            again = why == "start" or p.risk.state is TradingState.HALTED
            self.withdraw_if_stopped(p, TradingState.ACTIVE if again else state)
        if self._signalled or self._cancel_due:
            await self._submit_all(self._pending_orders(now))
        return differed
