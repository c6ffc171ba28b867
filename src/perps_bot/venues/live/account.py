"""Reading the exchange's account replies (balance, positions, open orders) into the
bot's terms, for reconciliation. Pure functions of ccxt's unified replies."""

from collections.abc import Callable
from typing import Any

from perps_bot.domain import Order, OrderStatus, OrderType, Side
from perps_bot.venues.base import VenuePosition
from perps_bot.venues.live.conditional import order_type_of
from perps_bot.venues.live.tracking import EPS, Tracked, num


def wallet_balance(reply: Any, settle: str) -> float | None:
    """Wallet balance of the settlement asset (excludes unrealized PnL, like the ledger)."""
    if not isinstance(reply, dict):
        return None
    info = reply.get("info")
    assets = info.get("assets") if isinstance(info, dict) else None
    if isinstance(assets, list):
        for row in assets:
            if isinstance(row, dict) and row.get("asset") == settle:
                wallet = num(row.get("walletBalance"))
                if wallet is not None:
                    return wallet
    entry = reply.get(settle)
    return num(entry.get("total")) if isinstance(entry, dict) else None


def position_of(row: Any, bot_symbol: Callable[[str], str]) -> VenuePosition | None:
    """A non-zero position row as a signed VenuePosition (None for flat or unreadable)."""
    if not isinstance(row, dict):
        return None
    contracts = num(row.get("contracts")) or 0.0
    if abs(contracts) <= EPS:
        return None
    size = contracts * (num(row.get("contractSize")) or 1.0)
    side = str(row.get("side") or "").lower()
    short = side == "short" or (side != "long" and size < 0)
    size = -abs(size) if short else abs(size)
    entry = num(row.get("entryPrice")) or 0.0
    return VenuePosition(bot_symbol(str(row.get("symbol"))), size, entry)


def foreign_order(row: dict[str, Any], symbol: str, now_ms: int) -> Tracked:
    """An open order the bot did not place in this run (left by an earlier run, or placed
    by hand), tracked from now on. Fills before now belong to the position the snapshot
    already shows, so they count as seen and reported."""
    exchange_cid = str(row.get("clientOrderId") or row["id"])
    kind = order_type_of(row)
    is_limit = kind is OrderType.LIMIT
    filled = num(row.get("filled")) or 0.0
    average = num(row.get("average")) or 0.0
    order = Order(
        client_id=exchange_cid,
        symbol=symbol,
        side=Side.BUY if str(row.get("side")).lower() == "buy" else Side.SELL,
        size=num(row.get("amount")) or 0.0,
        order_type=kind,
        price=num(row.get("price")) if is_limit else None,
        reduce_only=bool(row.get("reduceOnly")),
        created_ts=int(num(row.get("timestamp")) or now_ms),
        correlation_id=exchange_cid,
        reason=kind.exit_reason or "reconciled",
        status=OrderStatus.PARTIALLY_FILLED if filled > EPS else OrderStatus.ACCEPTED,
        filled=filled,
        avg_price=average,
        exchange_id=str(row["id"]),
        status_reason="found open on the exchange",
        updated_ts=now_ms,
        trigger_price=num(row.get("triggerPrice")) if kind.is_trigger else None,
    )
    cost = num(row.get("cost")) or filled * average
    return Tracked(
        order,
        str(row.get("symbol")),
        exchange_cid,
        seen_filled=filled,
        seen_cost=cost,
        reported=filled,
    )
