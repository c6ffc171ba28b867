"""The one order state machine (SPEC 8): every allowed step, and every other refused."""

import itertools

import pytest

from perps_bot.domain import (
    Order,
    OrderStateError,
    OrderStatus,
    OrderType,
    Side,
    close_open,
    record_fill,
    transition,
)
from perps_bot.domain.lifecycle import ALLOWED

S = OrderStatus


def new_order(size: float = 1.0) -> Order:
    return Order("c1", "BTC-PERP", Side.BUY, size, OrderType.MARKET, None, False, 0, "c1")


def test_the_documented_paths() -> None:
    order = new_order()
    steps = [transition(order, S.ACCEPTED, 1, "accepted")]
    steps.append(record_fill(order, 0.25, 100.0, 2))
    steps.append(record_fill(order, 0.75, 104.0, 3))
    assert [s.status for s in steps] == [S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED]
    assert order.filled == 1.0 and order.avg_price == pytest.approx(103.0)
    assert (steps[-1].filled, steps[-1].ts, order.updated_ts) == (1.0, 3, 3)
    assert steps[1].filled == 0.25  # an update is a snapshot, not the live order


def test_closing_an_order_the_venue_never_accepted_is_a_rejection() -> None:
    order = new_order()
    update = close_open(order, S.CANCELED, 5, "not sent: breaker open")
    assert update is not None and update.status is S.REJECTED
    assert close_open(order, S.CANCELED, 6, "again") is None  # final: nothing to close


@pytest.mark.parametrize(("before", "after"), list(itertools.product(list(S), list(S))))
def test_only_allowed_steps_happen(before: OrderStatus, after: OrderStatus) -> None:
    order = new_order()
    order.status = before
    if after in ALLOWED[before]:
        assert transition(order, after, 1, "why").status is after
    else:
        with pytest.raises(OrderStateError):
            transition(order, after, 1, "why")
        assert order.status is before


def test_final_states_have_no_way_out() -> None:
    for status in (S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED):
        assert ALLOWED[status] == frozenset() and not status.is_open
