"""Perpetual-futures margin formulas (SPEC 3): funding, maintenance tiers, liquidation.

Pure functions with no account state; the ledger (`perps_bot.ledger`) applies them.
This package sits just above `domain` in the layer order and imports nothing else
from the project, so config tier tables are passed in as plain tuples.
"""

from perps_bot.margin.formulas import (
    TierRow,
    funding_payment,
    liquidation_price,
    maintenance_margin,
    maintenance_tier,
    side_sign,
)
from perps_bot.margin.tiers import liquidation_price_tiered

__all__ = [
    "TierRow",
    "funding_payment",
    "liquidation_price",
    "liquidation_price_tiered",
    "maintenance_margin",
    "maintenance_tier",
    "side_sign",
]
