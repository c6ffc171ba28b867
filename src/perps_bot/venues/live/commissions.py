"""Live fees are the exchange's own commissions (SPEC 14), not an estimate.

Binance's order replies carry no commission; its account trades (`userTrades`, ccxt
`fetch_my_trades` with the order id) do. Before the venue hands out an order's fills it
reads the order's trades and replaces the estimated fee by what the exchange charged:
the order's total commission so far minus what was already reported, shared among
the pending fills by size. When the trades do not cover the executed quantity yet,
or are charged in another asset (a BNB fee discount), or cannot be read, the estimate
from the instrument's bps stays, and the run log says so once per order.
"""

import logging
from collections.abc import Sequence
from typing import Any

from perps_bot.domain import Fill
from perps_bot.venues.live.tracking import EPS, Tracked, num

log = logging.getLogger("perps_bot.venues.live")


def commission(trades: Any, settle: str) -> tuple[float, float] | None:
    """(total commission, quantity) over an order's trades, in the settlement asset;
    None when a trade is charged in another asset or unreadable (no id among them).
    Each trade counts once by its id: a trade listed twice (an answer's pages
    overlapping) doubled the fee."""
    total = quantity = 0.0
    seen: set[str] = set()
    for trade in trades if isinstance(trades, list) else []:
        if not isinstance(trade, dict) or not isinstance(trade.get("fee"), dict):
            return None
        fee, trade_id = trade["fee"], trade.get("id")
        cost, amount = num(fee.get("cost")), num(trade.get("amount"))
        if cost is None or amount is None or str(fee.get("currency") or settle) != settle:
            return None
        if trade_id is None or str(trade_id) == "":
            return None
        if str(trade_id) in seen:
            continue
        seen.add(str(trade_id))
        total += cost
        quantity += amount
    return total, quantity


def apply_commission(
    tracked: Tracked, fills: Sequence[Fill], charged: tuple[float, float] | None
) -> bool:
    """Set the exchange's commission on `fills` (this order's, not yet handed out); False
    when the trades cannot say it yet (the estimate stays)."""
    if charged is None or not fills:
        return False
    total, quantity = charged
    if quantity < tracked.seen_filled - EPS * max(1.0, tracked.seen_filled):
        return False
    due = total - tracked.commission_reported
    size = sum(f.size for f in fills)
    for fill in fills:
        fill.fee = due * fill.size / size
    tracked.commission_reported = total
    return True
