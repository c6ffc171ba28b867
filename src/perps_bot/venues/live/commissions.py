"""Live fees are the exchange's own commissions (SPEC 14), not an estimate.

Binance's order replies carry no commission; its account trades (`userTrades`, ccxt
`fetch_my_trades` with the order id) do. Before the venue hands out an order's fills it
reads the order's trades and replaces the estimated fee by what the exchange charged:
the order's total commission so far minus what was already reported, shared among
the pending fills by size. When the trades do not cover the executed quantity yet, or
cannot be read, the estimate from the instrument's bps stays, and the run log says so.

A trade charged in another asset (BNB, when the account's BNB fee discount is on) is
never booked as that many units of the settlement asset: its fee is the instrument's
bps of its notional (maker or taker as the trade says), the same estimate for the
bot's own orders, for trades of orders placed elsewhere and for a crash's recovered
fills, and the run log says once per asset that these fees are estimates.
"""

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from perps_bot.domain import Fill, Instrument
from perps_bot.venues.fill_rules import fee_for
from perps_bot.venues.live.tracking import EPS, Tracked, num

log = logging.getLogger("perps_bot.venues.live")


class Commissions:
    """Reads what the exchange charged off its trades, in the settlement asset."""

    def __init__(self, instruments: Mapping[str, Instrument]) -> None:
        self._instruments = instruments
        self._estimated: set[str] = set()  # assets whose fees the run log called estimates

    def of_trade(self, trade: Any, symbol: str, settle: str) -> float | None:
        """One ccxt trade's fee in `settle` (None: it cannot be read). Charged in another
        asset, it is the instrument's estimate (module doc), said once per asset."""
        fee = trade.get("fee") if isinstance(trade, dict) else None
        cost = num(fee.get("cost")) if isinstance(fee, dict) else None
        if not isinstance(fee, dict) or cost is None:
            return None
        asset = str(fee.get("currency") or settle)
        if asset == settle:
            return cost
        amount, price = num(trade.get("amount")), num(trade.get("price"))
        instrument = self._instruments.get(symbol)
        if amount is None or price is None or instrument is None:
            return None
        maker = trade.get("takerOrMaker") == "maker"
        if asset not in self._estimated:
            self._estimated.add(asset)
            log.warning("live venue: the exchange charges fees in %s, not %s: they are booked"
                        " as estimates from the instrument's bps, not the exchange's"
                        " commission", asset, settle)  # fmt: skip
        return fee_for(amount * price, instrument.maker_bps if maker else instrument.taker_bps)

    def total(
        self, trades: Any, symbol: str, settle: str, skip: float = 0.0
    ) -> tuple[float, float] | None:
        """(commission, quantity) over an order's trades, in `settle`: the commission of
        its trades after the first `skip` of executed quantity (oldest first; a trade
        across that line counts by its share), the quantity of them all. None when a trade
        is unreadable (no fee, amount or id). Each trade counts once by its id: a
        trade listed twice (an answer's pages overlapping) doubled the fee."""
        total = quantity = 0.0
        seen: set[str] = set()
        listed = trades if isinstance(trades, list) else []
        for trade in sorted(listed, key=_when):
            fee = self.of_trade(trade, symbol, settle)
            amount, trade_id = num(trade.get("amount")), trade.get("id")
            if fee is None or amount is None or trade_id is None or str(trade_id) == "":
                return None
            if str(trade_id) in seen:
                continue
            seen.add(str(trade_id))
            total += fee * _share_after(skip - quantity, amount)
            quantity += amount
        return total, quantity


def _share_after(left: float, amount: float) -> float:
    """The share of a trade of `amount` executed after the `left` quantity still before
    the line (0 when it is all before)."""
    if left <= EPS * max(1.0, amount):
        return 1.0
    if amount <= left + EPS * max(1.0, amount):
        return 0.0
    return (amount - left) / amount


def _when(trade: Any) -> tuple[float, int, str]:
    """A trade's place in its order's executions: its time (unreadable: first), then its
    id (the exchange's are increasing numbers: by length, then digits, so no int parse)
    for trades of one millisecond, which a page may list in any order."""
    if not isinstance(trade, dict):
        return 0.0, 0, ""
    trade_id = str(trade.get("id") or "")
    return num(trade.get("timestamp")) or 0.0, len(trade_id), trade_id


def apply_commission(
    tracked: Tracked, fills: Sequence[Fill], charged: tuple[float, float] | None
) -> bool:
    """Set the exchange's commission on `fills` (this order's, not yet handed out); False
    when the trades cannot say it yet (the estimate stays). `charged`: Commissions.total
    of the order's trades beyond its `foreign_filled`, whose commission is not this
    venue's to hand out. An estimate that goes out counts as charged: the order's next
    fill takes the exchange's total less it (else that fill carried it again)."""
    short = tracked.seen_filled - EPS * max(1.0, tracked.seen_filled)
    if charged is None or charged[1] < short or not fills:
        tracked.commission_reported += sum(f.fee for f in fills)
        return False
    total = charged[0]  # beyond the order's foreign part (Tracked)
    due = total - tracked.commission_reported
    size = sum(f.size for f in fills)
    for fill in fills:
        fill.fee = due * fill.size / size
    tracked.commission_reported = total
    return True
