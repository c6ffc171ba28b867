"""Closed-form perpetual-futures formulas: funding, maintenance tiers, liquidation price.

These are pure float functions of their arguments, with no account state, so the
ledger, the risk gate, reports and tests can all share one definition of each
formula. Floats (not Decimal) on purpose: the results are prices and thresholds
compared against float market data, never summed into a balance; the ledger does
its exact cash bookkeeping in Decimal and only calls these for trigger levels.

Conventions (SPEC 3, Binance USDM one-way mode): linear USDT-margined contracts,
`size` is a positive base quantity, `side` is "long" (s = +1) or "short" (s = -1).
A maintenance tier is `(notional_floor, mmr, maintenance_amount)`; its maintenance
margin at position notional N is `N * mmr - maintenance_amount` (the amount, which
Binance calls `cum`, makes the margin continuous across tier boundaries).
"""

import math
from collections.abc import Sequence

# (notional_floor, maintenance_margin_rate, maintenance_amount), floors ascending from 0;
# defined with the instrument that carries the table.
from perps_bot.domain.instrument import TierRow as TierRow

_SIGNS = {"long": 1, "short": -1}


def side_sign(side: str) -> int:
    """+1 for "long", -1 for "short"; ValueError for anything else."""
    sign = _SIGNS.get(side) if isinstance(side, str) else None
    if sign is None:
        raise ValueError(f"side must be 'long' or 'short', got {side!r}")
    return sign


def _require_positive(name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _require_finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def funding_payment(side: str, size: float, mark_price: float, rate: float) -> float:
    """The signed funding cash flow to the account: -s * Q * mark * rate.

    A positive rate means longs pay (negative result) and shorts receive.
    A zero size pays nothing.
    """
    sign = side_sign(side)
    if not (size >= 0 and math.isfinite(size)):
        raise ValueError(f"size must be a non-negative finite number, got {size!r}")
    _require_positive("mark_price", mark_price)
    _require_finite("rate", rate)
    return -sign * size * mark_price * rate


def maintenance_tier(notional: float, tiers: Sequence[TierRow]) -> tuple[float, float]:
    """(mmr, maintenance_amount) of the last tier whose floor <= `notional`.

    `tiers` must be sorted by ascending floor (config validates that); a notional
    below the first floor, a negative notional or an empty table is a ValueError.
    """
    if not tiers:
        raise ValueError("tier table is empty")
    if not (notional >= 0 and math.isfinite(notional)):
        raise ValueError(f"notional must be a non-negative finite number, got {notional!r}")
    if notional < tiers[0][0]:
        raise ValueError(f"notional {notional!r} is below the first tier floor {tiers[0][0]!r}")
    chosen = tiers[0]
    for tier in tiers:
        if tier[0] > notional:
            break
        chosen = tier
    return chosen[1], chosen[2]


def maintenance_margin(notional: float, tiers: Sequence[TierRow]) -> float:
    """Maintenance margin of a position of `notional` (absolute, quote currency)."""
    mmr, amount = maintenance_tier(notional, tiers)
    return notional * mmr - amount


def liquidation_price(
    side: str,
    size: float,
    entry_price: float,
    wallet_balance: float,
    mmr: float,
    maintenance_amount: float = 0,
    *,
    other_maintenance_margin: float = 0,
    other_unrealized_pnl: float = 0,
) -> float:
    """Binance USDM one-way-mode liquidation price for ONE given tier (mmr, amount).

        LP = (WB - TMM_other + UPNL_other + cum - s*Q*EP) / (Q*MMR - s*Q)

    It is the price P where margin balance equals maintenance margin:
    WB + UPNL_other + s*Q*(P - EP) == TMM_other + Q*P*MMR - cum.
    WB is the isolated wallet (isolated mode) or the cross wallet balance; the
    `other_*` terms are zero in isolated mode.

    Returns 0.0 instead of a negative price. For a long that means it can never be
    liquidated (its margin covers a fall to zero); for a short it means the margin
    is negative at every price (already bankrupt: liquidate at once). The tier is
    taken as given; `liquidation_price_tiered` picks the tier for you.
    """
    sign = side_sign(side)
    _require_positive("size", size)
    _require_positive("entry_price", entry_price)
    for name, value in (
        ("wallet_balance", wallet_balance),
        ("maintenance_amount", maintenance_amount),
        ("other_maintenance_margin", other_maintenance_margin),
        ("other_unrealized_pnl", other_unrealized_pnl),
    ):
        _require_finite(name, value)
    if not (0 <= mmr < 1):
        raise ValueError(f"mmr must be in [0, 1), got {mmr!r}")
    numerator = (
        wallet_balance
        - other_maintenance_margin
        + other_unrealized_pnl
        + maintenance_amount
        - sign * size * entry_price
    )
    price = numerator / (size * mmr - sign * size)
    return price if price > 0 else 0.0
