"""Stop-loss and take-profit orders on the exchange (SPEC 16): how a trigger order is
sent, looked up and followed through ccxt.

Binance USDM keeps conditional orders (STOP_MARKET, TAKE_PROFIT_MARKET) in its algo
order service, and ccxt 4.5 routes them there: `create_order` with a `stopPrice` posts
to /fapi/v1/algoOrder (the client id goes as `clientAlgoId`), and `fetch_order`,
`fetch_open_orders` and `cancel_order` reach the same service when given
`{"trigger": True}`. The algo order's own id is the order's `exchange_id`.

When the price reaches the trigger (the mark price: `workingType=MARK_PRICE`, so a
wick of the last price alone does not stop the position out), the algo order finishes
and a plain market order takes its place (`actualOrderId`); the executed quantity,
price and trades are that order's. So a trigger order is followed in two steps: its
algo order until it names the market order, then that market order (`Tracked.fills_id`)
for the fills, the final status and the commissions.
"""

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from perps_bot.domain import Order, OrderType
from perps_bot.venues.live.tracking import Tracked

Call = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]

WORKING_TYPE = "MARK_PRICE"
#: ccxt's params that select the algo (conditional) endpoints on fetch and cancel
ALGO = {"trigger": True}


def create_args(order: Order) -> tuple[str, dict[str, Any]]:
    """ccxt's order type and the params (client id aside) that place `order`."""
    if order.order_type.is_trigger:
        params = {"stopPrice": order.trigger_price, "workingType": WORKING_TYPE}
        return str(order.order_type).upper(), params
    return ("limit" if order.order_type is OrderType.LIMIT else "market"), {}


def lookup_params(order: Order, exchange_client_id: str) -> dict[str, Any]:
    """ccxt's fetch_order params that find `order` by its client id."""
    found: dict[str, Any] = {"origClientOrderId": exchange_client_id}
    return {**found, **ALGO} if order.order_type.is_trigger else found


def actual_order_id(reply: Any) -> str | None:
    """The market order an algo order became when it triggered (None: not yet)."""
    info = reply.get("info") if isinstance(reply, dict) else None
    actual = info.get("actualOrderId") if isinstance(info, dict) else None
    return str(actual) if actual not in (None, "", 0, "0") else None


def awaiting_child(reply: dict[str, Any]) -> dict[str, Any]:
    """An algo reply that names its market order, without its final status: the order
    is accepted, and its fills and end come from the market order."""
    return {**reply, "status": "open", "filled": 0, "average": None, "cost": None}


def algo_view(tracked: Tracked, reply: Any) -> Any:
    """`reply` for a trigger order's books: an algo reply that names its market order
    records that order (`tracked.actual_id`) and only says the order is accepted."""
    if not tracked.order.order_type.is_trigger or not isinstance(reply, dict):
        return reply
    actual = actual_order_id(reply)
    if actual is None:
        return reply
    tracked.actual_id = actual
    return awaiting_child(reply)


async def current_state(exchange: Any, tracked: Tracked, call: Call) -> Any:
    """The exchange's reply for the order now: a plain order's own; a trigger order's
    algo order until it triggered, then the market order it became. `call(what, fn)`
    makes the request (Requests.once or Requests.read)."""
    order, symbol = tracked.order, tracked.ccxt_symbol
    if order.order_type.is_trigger and tracked.actual_id is None:
        algo = await call(
            f"fetch {order.client_id}",
            partial(exchange.fetch_order, order.exchange_id, symbol, ALGO),
        )
        algo = algo_view(tracked, algo)
        if tracked.actual_id is None:
            return algo
    return await call(
        f"fetch {order.client_id}", partial(exchange.fetch_order, tracked.fills_id, symbol)
    )


def order_type_of(row: dict[str, Any]) -> OrderType:
    """The bot's order type of an exchange order row (ccxt reports stops as `market`)."""
    info = row.get("info")
    raw = info.get("orderType") or info.get("type") if isinstance(info, dict) else None
    kind = str(raw or row.get("type") or "").lower()
    return OrderType(kind) if kind in set(OrderType) else OrderType.MARKET
