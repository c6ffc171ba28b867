"""Fills the exchange made that no order of this venue explains: the exchange's own
liquidations (Binance's `autoclose-` orders, listed by forceOrders) and trades of
orders placed elsewhere (by hand, or by an earlier run). Reconciliation books them so
the ledger's PnL is the exchange's, instead of silently adopting a new position.

Trades of orders this venue placed are left out (their fills come from the orders'
status); every trade is handed out once (by trade id), and only when every read of
the reconciliation succeeded. A trade's fee is read as for the bot's own orders
(venues.live.commissions: another asset's amount is never booked as the settlement
asset's).
"""

from collections.abc import Callable
from typing import Any

import ccxt.async_support as ccxt_async

from perps_bot.domain import Fill, Liquidity, Side, short
from perps_bot.venues.live.tracking import num

LIQUIDATION_PREFIX = "autoclose-"
SIDES = {"buy": Side.BUY, "sell": Side.SELL}
#: a trade's fee in the settlement asset, None when it cannot be read
FeeOf = Callable[[dict[str, Any]], float | None]


def foreign_client_id(order_id: str) -> str:
    """The client id a trade of the exchange order `order_id` is booked under."""
    return f"ext-{order_id}"


def liquidation_orders(rows: Any) -> dict[str, str]:
    """forceOrders reply -> {exchange order id: client order id} of liquidation orders.

    A liquidation is known only by its order id (its trade carries nothing else), so an
    answer that is not a list, or a row without an order id, is a broken answer
    (BadResponse), never read as no liquidation: its trade was then booked as an
    ordinary trade of another order (not counted or warned about as a liquidation)."""
    if not isinstance(rows, list):
        raise ccxt_async.BadResponse(f"forceOrders answered {type(rows).__name__}, not a list")
    found: dict[str, str] = {}
    for row in rows:
        if not isinstance(row, dict) or row.get("orderId") in (None, ""):
            raise ccxt_async.BadResponse(
                f"a forceOrders row without an orderId: {short(str(row), 80)}"
            )
        found[str(row["orderId"])] = str(row.get("clientOrderId") or row["orderId"])
    return found


def foreign_fills(
    trades: Any,
    symbol: str,
    *,
    own_orders: set[str],
    seen_trades: set[str],
    liquidations: dict[str, str],
    fee_of: FeeOf,
) -> dict[str, Fill]:
    """ccxt trades -> {trade id: Fill} for the ones not of `own_orders` and not in
    `seen_trades`. The caller marks them seen once every read succeeded: marking them
    here lost them when a later read failed.

    A trade whose id, order, side, size, price or fee cannot be read is a broken answer
    (BadResponse: the read is retried, then reconciliation is skipped), never skipped
    or guessed: skipped, the fill was lost; without an id, every id-less trade after the
    first was; without an order id, a trade of the bot's own order was booked twice."""
    if not isinstance(trades, list):
        raise ccxt_async.BadResponse(f"the trades answer is {type(trades).__name__}, not a list")
    fills: dict[str, Fill] = {}
    for trade in trades:
        if not isinstance(trade, dict) or trade.get("id") is None or trade.get("order") is None:
            shown = {k: trade.get(k) for k in ("id", "order")} if isinstance(trade, dict) else trade
            raise ccxt_async.BadResponse(f"a trade without an id or order: {short(str(shown), 80)}")
        trade_id, order_id = str(trade["id"]), str(trade["order"])
        if trade_id in seen_trades or order_id in own_orders:
            continue
        fills[trade_id] = _fill(trade, symbol, liquidations, fee_of)
    return fills


def _fill(trade: dict[str, Any], symbol: str, liquidations: dict[str, str], fee_of: FeeOf) -> Fill:
    """One foreign trade as a Fill (BadResponse when a field cannot be read)."""
    order_id = str(trade["order"])
    size, price = num(trade.get("amount")), num(trade.get("price"))
    side = SIDES.get(str(trade.get("side")).lower())
    fee = fee_of(trade)
    if not size or size < 0 or not price or price < 0 or side is None or fee is None:
        shown = {k: trade.get(k) for k in ("id", "side", "amount", "price", "fee")}
        raise ccxt_async.BadResponse(f"a trade that cannot be read: {short(str(shown), 160)}")
    liquidation = order_id in liquidations
    client_id = liquidations.get(order_id) or foreign_client_id(order_id)
    return Fill(
        ts=int(num(trade.get("timestamp")) or 0),
        symbol=symbol,
        side=side,
        size=size,
        price=price,
        fee=fee,
        liquidity=Liquidity.MAKER if trade.get("takerOrMaker") == "maker" else Liquidity.TAKER,
        client_id=client_id,
        correlation_id=client_id,
        reason="liquidated by the exchange" if liquidation else "exchange fill of another order",
        is_liquidation=liquidation,
    )
