"""The ccxt client factory and symbol mapping for the real exchange path.

Only this package builds ccxt clients, so dry-run safety (no keys), the loopback
``base_url`` rewrite and ccxt's error mapping are decided in one place. The factory is
imported by name (`perps_bot.exchange.client`), never from here: ccxt costs a second
and 70 MB at start-up, which backtests, reports and `--version` must not pay.
"""

from perps_bot.exchange.errors import ExchangeSetupError
from perps_bot.exchange.symbols import (
    from_exchange_symbol,
    from_market_id,
    to_exchange_symbol,
    to_market_id,
)

__all__ = [
    "ExchangeSetupError",
    "from_exchange_symbol",
    "from_market_id",
    "to_exchange_symbol",
    "to_market_id",
]
