"""The matching engine's orders (venues.matching): accepted (or rejected) at submit
with the venue's id and the time they become live, cancelled, closed when done, listed,
and kept with the fill generator's state for a checkpoint. Every change goes through
domain.lifecycle and is queued as an OrderUpdate in `updates`. A base of
`MatchingEngine`, whose attributes these are.
"""

from typing import Any

import numpy as np

from perps_bot.domain import Order, OrderStatus, OrderUpdate, close_open, transition
from perps_bot.domain.enums import ACCEPTED, CANCELED, REJECTED
from perps_bot.venues.base import OrderRejected
from perps_bot.venues.fill_rules import order_problem
from perps_bot.venues.match_rules import MatchingRules
from perps_bot.venues.order_queue import SymbolOrders, WorkingOrder


class EngineOrders:
    rules: MatchingRules
    _rng: np.random.Generator
    _id_prefix: str
    _next_id: int
    _orders: dict[str, WorkingOrder]
    _by_symbol: dict[str, SymbolOrders]
    _seq: int
    #: Order lifecycle changes not yet drained by the venue's owner.
    updates: list[OrderUpdate]

    def submit(self, order: Order) -> Order:
        """Validate and queue `order` (accepted); it becomes live after the latency.

        Raises OrderRejected(None, ...) for a non-positive size, a limit order
        without a positive price, or a client id that is already open.
        """
        problem = order_problem(order, self._orders)
        if problem is not None:
            self.updates.append(transition(order, REJECTED, order.created_ts, problem))
            raise OrderRejected(None, f"{order.client_id}: {problem}")
        order.exchange_id = f"{self._id_prefix}-{self._next_id}"
        self._next_id += 1
        self.updates.append(transition(order, ACCEPTED, order.created_ts, "accepted"))
        self._seq += 1
        working = WorkingOrder(order, self._live_ts(order), self._seq)
        self._orders[order.client_id] = working
        symbol_orders = self._by_symbol.get(order.symbol)
        if symbol_orders is None:
            symbol_orders = self._by_symbol[order.symbol] = SymbolOrders()
        symbol_orders.queue(working)
        return order

    def _live_ts(self, order: Order) -> int:
        """When a submitted order reaches the simulated market."""
        return order.created_ts + self.rules.latency_ms

    def cancel(self, client_id: str, ts: int, reason: str = "canceled") -> Order | None:
        """Cancel an open order; returns it, or None if no such open order (idempotent)."""
        working = self._orders.get(client_id)
        if working is None:
            return None
        self._close(working, CANCELED, ts, reason)
        return working.order

    def cancel_all(
        self, ts: int, reason: str, symbol: str | None = None, portfolio: str | None = None
    ) -> int:
        """Cancel every open order (of `symbol`, of `portfolio`), e.g. at a liquidation or
        the run's end."""
        doomed = [
            w
            for w in self._orders.values()
            if (symbol is None or w.order.symbol == symbol)
            and (portfolio is None or w.order.portfolio == portfolio)
        ]
        for working in doomed:
            self._close(working, CANCELED, ts, reason)
        return len(doomed)

    def open_orders(self) -> list[Order]:
        """Queued and resting orders, in submission order."""
        return [w.order for w in self._orders.values()]

    def state(self) -> tuple[object, ...]:
        """Open orders (queued and resting, with their live times), the fill generator's
        state and the id counters, for a checkpoint between events (no update pending)."""
        orders = [(w.order, w.live_ts, w.seq, w.active, w.fired) for w in self._orders.values()]
        return (self._rng.bit_generator.state, self._next_id, self._seq, orders)

    def restore_state(self, state: Any) -> None:
        rng_state, next_id, seq, orders = state
        self._rng.bit_generator.state = rng_state
        self._next_id, self._seq = int(next_id), int(seq)
        self._orders, self._by_symbol = {}, {}
        for order, live_ts, item_seq, active, fired in orders:
            working = WorkingOrder(order, live_ts, item_seq, active, fired)
            self._orders[order.client_id] = working
            book = self._by_symbol.setdefault(order.symbol, SymbolOrders())
            if active:
                book.rest(working)
            else:
                book.queue(working)

    def _close(self, item: WorkingOrder, status: OrderStatus, ts: int, reason: str) -> None:
        update = close_open(item.order, status, ts, reason)
        if update is not None:
            self.updates.append(update)
        self._remove(item)

    def _remove(self, item: WorkingOrder) -> None:
        self._orders.pop(item.order.client_id, None)
        symbol_orders = self._by_symbol.get(item.order.symbol)
        if symbol_orders is not None:
            symbol_orders.discard(item)
            if not symbol_orders:
                del self._by_symbol[item.order.symbol]
