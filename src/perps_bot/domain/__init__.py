"""The pure domain model: market events, intents, orders, fills and the account view.

Nothing here does I/O or knows which venue or profile runs; every other package
imports from here and this package imports from nothing else in the project.
"""

from perps_bot.domain.account import AccountView, PositionBook
from perps_bot.domain.enums import (
    DenialReason,
    Liquidity,
    MarginMode,
    OrderStatus,
    OrderType,
    RunMode,
    Side,
    TradingState,
)
from perps_bot.domain.errors import PerpsBotError, short, short_path
from perps_bot.domain.instrument import Instrument, InstrumentRefusal, PreparedOrder, TierRow
from perps_bot.domain.lifecycle import OrderStateError, close_open, record_fill, transition
from perps_bot.domain.market import (
    BookSnapshot,
    Candle,
    FundingRate,
    MarketEvent,
    MarkPrice,
    PublicTrade,
    Quote,
    event_price,
)
from perps_bot.domain.orders import (
    ACCOUNT,
    DEFAULT_PORTFOLIO,
    Fill,
    Order,
    OrderIntent,
    OrderUpdate,
    Signal,
    TargetPosition,
    fill_of,
    portfolio_run_id,
)
from perps_bot.domain.timeutil import (
    DAY_MS,
    MAX_DURATION_MS,
    MAX_TIME_MS,
    MIN_TIME_MS,
    THREE_DIGITS,
    YEAR_MS,
    format_duration,
    iso_utc,
    parse_duration,
    parse_iso_ms,
    time_in_range,
)

__all__ = [
    "ACCOUNT",
    "DAY_MS",
    "DEFAULT_PORTFOLIO",
    "MAX_DURATION_MS",
    "MAX_TIME_MS",
    "MIN_TIME_MS",
    "THREE_DIGITS",
    "YEAR_MS",
    "AccountView",
    "BookSnapshot",
    "Candle",
    "DenialReason",
    "Fill",
    "FundingRate",
    "Instrument",
    "InstrumentRefusal",
    "Liquidity",
    "MarginMode",
    "MarkPrice",
    "MarketEvent",
    "Order",
    "OrderIntent",
    "OrderStateError",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "PerpsBotError",
    "PositionBook",
    "PreparedOrder",
    "PublicTrade",
    "Quote",
    "RunMode",
    "Side",
    "Signal",
    "TargetPosition",
    "TierRow",
    "TradingState",
    "close_open",
    "event_price",
    "fill_of",
    "format_duration",
    "iso_utc",
    "parse_duration",
    "parse_iso_ms",
    "portfolio_run_id",
    "record_fill",
    "short",
    "short_path",
    "time_in_range",
    "transition",
]
