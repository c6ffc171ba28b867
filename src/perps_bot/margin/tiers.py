"""Liquidation price over a whole maintenance tier table.

The single-tier formula needs the tier, but the tier depends on the notional AT
the liquidation price (Q * LP), which is what we are solving for. Binance resolves
this by iterating; we solve it exactly instead, bracket by bracket:

Inside one bracket [floor_i, floor_i+1) of notional, i.e. prices
[floor_i / Q, floor_i+1 / Q), the margin balance minus maintenance margin,

    f(P) = W' + s*Q*(P - EP) - (Q*P*mmr_i - cum_i),   W' = WB - TMM_other + UPNL_other,

is linear in P: increasing for a long (slope Q*(1 - mmr_i) > 0), decreasing for a
short. A long is liquidated at the highest price where f <= 0, a short at the
lowest. So for each bracket we take the part of it where f <= 0 (empty, or an
interval ending/starting at that bracket's single-tier root), and keep the highest
such price (long) or the lowest (short). For the continuous tables exchanges
publish (cum chosen so the margin does not jump at floors) this is exactly the
single-tier root of the one bracket that contains Q*LP; for a discontinuous
user table it is still the first price at which the position becomes unsafe,
possibly a bracket boundary. Cost: one pass over the table (about 10 rows).

The first bracket is taken to start at notional 0 whatever its floor says.
"""

import math
from collections.abc import Sequence

from perps_bot.margin.formulas import (
    TierRow,
    _require_positive,
    liquidation_price,
    side_sign,
)


def liquidation_price_tiered(
    side: str,
    size: float,
    entry_price: float,
    wallet_balance: float,
    tiers: Sequence[TierRow],
    *,
    other_maintenance_margin: float = 0.0,
    other_unrealized_pnl: float = 0.0,
) -> float:
    """Liquidation price with the tier chosen by the notional at the liquidation price.

    Same conventions and 0.0 floor as `liquidation_price`; `tiers` sorted ascending.
    """
    sign = side_sign(side)
    _require_positive("size", size)  # the brackets' prices are floors / size
    if not tiers:
        raise ValueError("tier table is empty")
    base = wallet_balance - other_maintenance_margin + other_unrealized_pnl
    best = 0.0 if sign > 0 else math.inf
    for index, (floor, mmr, amount) in enumerate(tiers):
        low = 0.0 if index == 0 else floor / size
        high = tiers[index + 1][0] / size if index + 1 < len(tiers) else math.inf
        root = liquidation_price(
            side,
            size,
            entry_price,
            wallet_balance,
            mmr,
            amount,
            other_maintenance_margin=other_maintenance_margin,
            other_unrealized_pnl=other_unrealized_pnl,
        )
        if sign > 0:
            # f increasing: unsafe part of the bracket is [low, min(root, high)).
            if _excess(base, sign, size, entry_price, mmr, amount, low) > 0:
                continue
            best = max(best, min(root, high))
        else:
            # f decreasing: unsafe part is [max(root, low), high); empty if safe at high.
            if high != math.inf and _excess(base, sign, size, entry_price, mmr, amount, high) > 0:
                continue
            best = min(best, max(root, low))
    return best if math.isfinite(best) else 0.0


def _excess(
    base: float, sign: int, size: float, entry: float, mmr: float, amount: float, price: float
) -> float:
    """Margin balance minus maintenance margin at `price` under one tier's parameters."""
    return base + sign * size * (price - entry) - (size * price * mmr - amount)
