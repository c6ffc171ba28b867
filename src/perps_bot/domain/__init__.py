"""The pure domain model: market events, intents, orders, fills and the account view.

Nothing here does I/O or knows which venue or profile runs; every other package
imports from here and this package imports from nothing else in the project.
"""

from perps_bot.domain.account import AccountView
from perps_bot.domain.enums import (
    DenialReason,
    Liquidity,
    MarginMode,
    OrderStatus,
    OrderType,
    Side,
    TradingState,
)
from perps_bot.domain.errors import PerpsBotError
from perps_bot.domain.market import (
    BookSnapshot,
    Candle,
    FundingRate,
    MarketEvent,
    MarkPrice,
    Quote,
    event_price,
)
from perps_bot.domain.orders import Fill, Order, OrderIntent, Signal, TargetPosition
from perps_bot.domain.timeutil import format_duration, iso_utc, parse_duration

__all__ = [
    "AccountView",
    "BookSnapshot",
    "Candle",
    "DenialReason",
    "Fill",
    "FundingRate",
    "Liquidity",
    "MarginMode",
    "MarkPrice",
    "MarketEvent",
    "Order",
    "OrderIntent",
    "OrderStatus",
    "OrderType",
    "PerpsBotError",
    "Quote",
    "Side",
    "Signal",
    "TargetPosition",
    "TradingState",
    "event_price",
    "format_duration",
    "iso_utc",
    "parse_duration",
]
