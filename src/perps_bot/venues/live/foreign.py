"""Fills the exchange made that no order of this venue explains: the exchange's own
liquidations (Binance's `autoclose-` orders, listed by forceOrders) and trades of
orders placed elsewhere (by hand, or by an earlier run). Reconciliation books them so
the ledger's PnL is the exchange's, instead of silently adopting a new position.

Trades of orders this venue placed are left out (their fills come from the orders'
status); every trade is handed out once (by trade id).
"""

from collections.abc import Iterable
from typing import Any

from perps_bot.domain import Fill, Liquidity, Side
from perps_bot.venues.live.tracking import num

LIQUIDATION_PREFIX = "autoclose-"


def liquidation_orders(rows: Any) -> dict[str, str]:
    """forceOrders reply -> {exchange order id: client order id} of liquidation orders."""
    found: dict[str, str] = {}
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and row.get("orderId") is not None:
            found[str(row["orderId"])] = str(row.get("clientOrderId") or row["orderId"])
    return found


def foreign_fills(
    trades: Iterable[Any],
    symbol: str,
    *,
    own_orders: set[str],
    seen_trades: set[str],
    liquidations: dict[str, str],
) -> list[Fill]:
    """ccxt trades -> Fills for the ones not of `own_orders` and not seen before
    (`seen_trades` is updated)."""
    fills: list[Fill] = []
    for trade in trades:
        if not isinstance(trade, dict):
            continue
        trade_id, order_id = str(trade.get("id")), str(trade.get("order"))
        size, price = num(trade.get("amount")), num(trade.get("price"))
        if trade_id in seen_trades or order_id in own_orders or not size or not price:
            continue
        seen_trades.add(trade_id)
        fee_info = trade.get("fee")
        fee = num(fee_info.get("cost")) if isinstance(fee_info, dict) else None
        liquidation = order_id in liquidations
        client_id = liquidations.get(order_id) or f"ext-{order_id}"
        reason = "liquidated by the exchange" if liquidation else "exchange fill of another order"
        fills.append(
            Fill(
                ts=int(num(trade.get("timestamp")) or 0),
                symbol=symbol,
                side=Side.BUY if str(trade.get("side")).lower() == "buy" else Side.SELL,
                size=size,
                price=price,
                fee=fee or 0.0,
                liquidity=Liquidity.MAKER
                if trade.get("takerOrMaker") == "maker"
                else Liquidity.TAKER,
                client_id=client_id,
                correlation_id=client_id,
                reason=reason,
                is_liquidation=liquidation,
            )
        )
    return sorted(fills, key=lambda f: f.ts)
