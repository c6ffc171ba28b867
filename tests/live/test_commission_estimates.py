"""A fill handed out with an estimated fee (its order's trades not listed yet) counts
toward what the order has been charged: the next fill takes the exchange's total less
that, so the fees booked add up to the exchange's commission. Before, the estimate was
not counted and the next fill carried the whole order's commission again."""

import pytest

from perps_bot.domain import Liquidity, Order, OrderType, Side
from perps_bot.domain.orders import fill_of
from perps_bot.venues.live.commissions import Commissions, apply_commission
from perps_bot.venues.live.tracking import Tracked


def _trade(trade_id: int, ts: int, amount: float, fee: float) -> dict[str, object]:
    return {"id": str(trade_id), "timestamp": ts, "amount": amount, "price": 100.0,
            "fee": {"cost": fee, "currency": "USDT"}}  # fmt: skip


@pytest.mark.parametrize("estimate", [0.04, 0.01])
def test_fees_booked_add_up_to_the_exchanges_after_an_estimated_one(estimate: float) -> None:
    commissions = Commissions({})
    order = Order("c1", "X", Side.BUY, 2.0, OrderType.LIMIT, 100.0, False, 0, "c1")
    tracked = Tracked(order, "X/USDT:USDT", "c1")
    first = fill_of(order, 1, 1.0, 100.0, estimate, Liquidity.MAKER)
    tracked.seen_filled = 1.0
    assert not apply_commission(tracked, [first], commissions.total([], "X", "USDT"))
    assert first.fee == estimate  # the trades do not say it yet: the estimate goes out
    tracked.reported = 1.0
    second = fill_of(order, 2, 1.0, 100.0, estimate, Liquidity.MAKER)
    tracked.seen_filled = 2.0
    listed = [_trade(1, 1, 1.0, 0.02), _trade(2, 2, 1.0, 0.02)]
    assert apply_commission(tracked, [second], commissions.total(listed, "X", "USDT"))
    assert first.fee + second.fee == pytest.approx(0.04)


def test_trades_of_one_millisecond_are_taken_in_id_order_past_the_adopted_part() -> None:
    """An adopted order's trades past what it had executed before this run are charged
    (its `foreign_filled`): trades listed out of order within one millisecond are taken
    by their id (the exchange's order of executions), not as listed."""
    listed = [_trade(10, 1000, 1.0, 0.02), _trade(9, 1000, 1.0, 0.05)]
    charged = Commissions({}).total(listed, "X", "USDT", 1.0)
    assert charged is not None
    assert charged[0] == pytest.approx(0.02)
