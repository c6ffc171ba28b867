"""The ccxt client factory and symbol mapping for the real exchange path.

Only this package builds ccxt clients, so dry-run safety (no keys), the loopback
``base_url`` rewrite and ccxt's error mapping are decided in one place.
"""

from perps_bot.exchange.client import create_exchange, point_at_base_url
from perps_bot.exchange.errors import ExchangeSetupError
from perps_bot.exchange.symbols import (
    from_exchange_symbol,
    from_market_id,
    to_exchange_symbol,
    to_market_id,
)

__all__ = [
    "ExchangeSetupError",
    "create_exchange",
    "from_exchange_symbol",
    "from_market_id",
    "point_at_base_url",
    "to_exchange_symbol",
    "to_market_id",
]
