"""Reading the exchange's account replies (balance, positions, open orders) into the
bot's terms, for reconciliation. Pure functions of the replies; an answer that cannot
be the truth about the account raises ccxt's BadResponse, which the venue retries like
a body that is not JSON, and then reports as unavailable (never a wrong account)."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ccxt.async_support as ccxt_async

from perps_bot.domain import Order, OrderStatus, OrderType, Side, short
from perps_bot.venues.base import VenuePosition
from perps_bot.venues.live.conditional import order_type_of
from perps_bot.venues.live.tracking import EPS, Tracked, num


def wallet_balance(reply: Any, settle: str) -> float:
    """Wallet balance of the settlement asset (excludes unrealized PnL, like the ledger),
    from the raw account answer ccxt keeps as `info`.

    Binance's account answer lists every margin asset with its walletBalance, a zero
    balance included, so a missing row or an unreadable value is a broken answer:
    BadResponse (retried; then the read fails, and reconciliation is skipped with a
    warning), never `None`, with which reconciliation kept the ledger's own balance, and
    never ccxt's `total`, which is the margin balance (unrealized PnL included)."""
    info = reply.get("info") if isinstance(reply, dict) else None
    assets = info.get("assets") if isinstance(info, dict) else None
    rows = [r for r in assets if isinstance(r, dict)] if isinstance(assets, list) else []
    row = next((r for r in rows if r.get("asset") == settle), None)
    if row is None:
        raise ccxt_async.BadResponse(f"the account answer lists no {settle} asset")
    wallet = num(row.get("walletBalance"))
    if wallet is None:
        raise ccxt_async.BadResponse(
            f"the account answer's {settle} walletBalance {_shown(row.get('walletBalance'))}"
            " is not a number"
        )
    return wallet


@dataclass(frozen=True, slots=True)
class PositionMarket:
    """How a positionRisk row's market id maps onto the bot's symbol and size."""

    symbol: str
    contract_size: float = 1.0


def positions_of(rows: Any, markets: Mapping[str, PositionMarket]) -> list[VenuePosition]:
    """The non-zero positions of `markets` (by exchange market id) in Binance's raw
    positionRisk answer, signed.

    Read here, not through ccxt's fetch_positions: ccxt drops a row whose entryPrice is
    null, zero or negative (the account then read flat while the exchange held the
    position, and reconciliation adopted a flat book: the bot could open it again), and
    read 0.01 held with a null positionAmt as 0.00995. A row of these markets
    whose positionAmt cannot be read, or that holds a position with no positive entry
    price, or a row whose market cannot be told, is a broken answer: BadResponse."""
    if not isinstance(rows, list):
        raise ccxt_async.BadResponse(f"positionRisk answered {type(rows).__name__}, not a list")
    positions: list[VenuePosition] = []
    for row in rows:
        market_id = row.get("symbol") if isinstance(row, dict) else None
        if not isinstance(market_id, str):
            raise ccxt_async.BadResponse(f"positionRisk row of no market: {_shown(row)}")
        market = markets.get(market_id)
        if market is None:
            continue  # a market this venue does not trade
        amount, entry = num(row.get("positionAmt")), num(row.get("entryPrice"))
        if amount is None:
            raise ccxt_async.BadResponse(
                f"positionRisk {market_id}: positionAmt {_shown(row.get('positionAmt'))}"
                " is not a number"
            )
        if abs(amount) <= EPS:
            continue
        if entry is None or entry <= 0:
            raise ccxt_async.BadResponse(
                f"positionRisk {market_id}: a position of {amount:g} with entryPrice"
                f" {_shown(row.get('entryPrice'))}"
            )
        positions.append(VenuePosition(market.symbol, amount * market.contract_size, entry))
    return positions


def _shown(value: Any) -> str:
    """A field's value for an error line, cut short (an answer can be anything)."""
    return short(repr(value))


def foreign_order(row: dict[str, Any], symbol: str, now_ms: int) -> Tracked:
    """An open order the bot did not place in this run (left by an earlier run, or placed
    by hand), tracked from now on. Fills before now belong to the position the snapshot
    already shows, so they count as seen and reported, and their commission (the fee
    the reply carries, the trades' commission) as charged. Before, the next fill of an
    order found partly filled was charged the commission of the whole order so far."""
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
    fee = row.get("fee")
    return Tracked(
        order,
        str(row.get("symbol")),
        exchange_cid,
        seen_filled=filled,
        seen_cost=cost,
        seen_fee=(num(fee.get("cost")) if isinstance(fee, dict) else None) or 0.0,
        reported=filled,
        foreign_filled=filled,
    )
