"""The one order state machine (SPEC 8). Every venue moves its orders only through these
functions, so a paper order and a live order go through the same states for the same
reasons, and every change becomes an `OrderUpdate` the store and the strategy see.

    new -> accepted -> partially_filled (repeatable) -> filled
    new -> rejected
    accepted | partially_filled -> canceled | expired | rejected
    new -> unknown -> accepted ... | rejected   (a live request whose outcome is unknown:
                                             found by a lookup, or certainly never executed)

A venue that learns several steps at once (a live market order whose reply already
says FILLED) reports each step in order: accepted, then filled.
"""

from perps_bot.domain.enums import FILLED, NEW, PARTIALLY_FILLED, REJECTED, UNKNOWN, OrderStatus
from perps_bot.domain.orders import Order, OrderUpdate

_S = OrderStatus
ALLOWED: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.NEW: frozenset({_S.ACCEPTED, _S.REJECTED, _S.UNKNOWN}),
    _S.UNKNOWN: frozenset({_S.ACCEPTED, _S.REJECTED}),
    _S.ACCEPTED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED, _S.REJECTED}),
    _S.PARTIALLY_FILLED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED}),
    _S.FILLED: frozenset(),
    _S.CANCELED: frozenset(),
    _S.REJECTED: frozenset(),
    _S.EXPIRED: frozenset(),
}
_EPS = 1e-12
_NEVER_SENT = (NEW, UNKNOWN)


class OrderStateError(Exception):
    """A venue tried a transition the lifecycle does not allow (a bug, not bad input)."""


def transition(order: Order, status: OrderStatus, ts: int, reason: str) -> OrderUpdate:
    """Move `order` to `status` (checked against ALLOWED) and describe the change."""
    if status not in ALLOWED[order.status]:
        raise OrderStateError(
            f"order {order.client_id}: {order.status} -> {status} is not a lifecycle step"
        )
    order.status = status
    order.status_reason = reason
    order.updated_ts = ts
    return update_of(order)


def record_fill(order: Order, quantity: float, price: float, ts: int) -> OrderUpdate:
    """Add an execution of `quantity` at `price`: partially_filled, or filled once the
    whole size has executed (the filled quantity then equals the size exactly)."""
    total = order.filled + quantity
    order.avg_price = (order.avg_price * order.filled + price * quantity) / total
    order.filled = total
    if order.size - total <= _EPS * max(1.0, order.size):
        order.filled = order.size
        return transition(order, FILLED, ts, "filled")
    return transition(order, PARTIALLY_FILLED, ts, "partially filled")


def close_open(order: Order, status: OrderStatus, ts: int, reason: str) -> OrderUpdate | None:
    """Cancel or expire an order if it is still open; None when it already ended."""
    if not order.status.is_open:
        return None
    if order.status in _NEVER_SENT:  # never reached the venue
        return transition(order, REJECTED, ts, reason)
    return transition(order, status, ts, reason)


def update_of(order: Order) -> OrderUpdate:
    """The order's current state as an update (positional, in field order: a keyword
    call costs about as much again as the construction, and this runs for every change)."""
    return OrderUpdate(order.updated_ts, order.client_id, order.symbol, order.status,
                       order.filled, order.avg_price, order.status_reason, order)  # fmt: skip
