"""A well-formed exchange answer with wrong fields (a null or zero price, a negative or
non-numeric quantity, NaN) is not the truth about money: the live venue never books a
fill from it. Measured on main: a market order whose reply said avgPrice 0 / null /
-5 / NaN was booked as a fill at that price; a negative executedQty closed the order
FILLED with nothing executed (the exchange's fill lost); a non-numeric one raised
ValueError out of `submit` after the order was placed. Such a reply is now an unknown
outcome: the order is looked up by its client id (never sent again) and its fill
comes from the exchange's readable answer."""

from typing import Any

import pytest

from perps_bot.domain import Order, OrderType, Side
from perps_emulator import EmulatorServer, Fault
from tests.live.live_helpers import (
    ClientFactory,
    order_posts,
    started_venue,
)

pytestmark = pytest.mark.integration

WRONG_ORDER_ANSWERS: dict[str, dict[str, Any]] = {
    "zero price": {"avgPrice": "0.00000", "cumQuote": "0"},
    "null price": {"avgPrice": None, "cumQuote": None},
    "negative price": {"avgPrice": "-5", "cumQuote": "-0.05"},
    "NaN price": {"avgPrice": "NaN", "cumQuote": "NaN"},
    "negative quantity": {"executedQty": "-0.01"},
    "text quantity": {"executedQty": "abc"},
    "NaN quantity": {"executedQty": "NaN"},
    "more than ordered": {"executedQty": "5", "cumQuote": "15000.05"},
}


@pytest.mark.parametrize("fields", WRONG_ORDER_ANSWERS.values(), ids=WRONG_ORDER_ANSWERS)
async def test_a_wrong_order_answer_is_looked_up_not_booked(
    emulator: EmulatorServer, make_client: ClientFactory, fields: dict[str, Any]
) -> None:
    venue, clock = await started_venue(emulator, make_client)
    emulator.inject(Fault("rewrite", path="/fapi/v1/order", fields=fields))
    order = Order("wa-1", "ETH-PERP", Side.BUY, 0.01, OrderType.MARKET, None, False, 0, "wa-1")
    await venue.submit(order)
    fills = [*await venue.poll(clock.now)]
    clock.now += 2_000
    fills += await venue.poll(clock.now)
    (trade,) = emulator.state.trades
    assert [(f.size, f.price) for f in fills] == [(0.01, pytest.approx(trade.price))]
    assert order_posts(emulator) == 1  # looked up, never sent again
    assert (order.status, order.filled) == ("filled", 0.01)
