"""Closed vocabularies shared by every stage; string enums so they log and store as text.

The members the per-order and per-fill code compares with are also bound to module
names at the end (`BUY`, `FILLED`, `TAKER`, ...), the one place they are: on Python
3.11 reading `Side.BUY` goes through EnumType's `__getattr__` hook, about 1,000
machine instructions each time, and those paths read them several times for every
order and fill. They are the same objects. Likewise the per-order and per-fill rows
and journal lines take a member's text as `member._value_` (a plain str, the same as
`str(member)`, which goes through the enum's `__str__` slot: about 1,000 instructions).
The facts those paths ask of a member (`Side.sign`, `OrderType.is_trigger`,
`OrderStatus.is_open`) are plain attributes, set once per member at the end, by the
members themselves (not their text): a property is a call of interpreted code, about
1,500 instructions from the compiled hot path, where reading an attribute is a lookup
in the member's dict.
"""

from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    #: +1 for a buy, -1 for a sell: the sign a fill adds to a position
    sign: int

    @property
    def opposite(self) -> "Side":
        return SELL if self is BUY else BUY

    @classmethod
    def for_delta(cls, delta: float) -> "Side":
        """The side that moves a position by `delta` (positive: buy)."""
        return BUY if delta > 0 else SELL


class OrderType(StrEnum):
    """Market and limit orders, and the protective orders (SPEC 16): a stop-loss or a
    take-profit that becomes a market order when the price reaches its trigger."""

    MARKET = "market"
    LIMIT = "limit"
    STOP_MARKET = "stop_market"
    TAKE_PROFIT_MARKET = "take_profit_market"

    #: a protective order: a market order once the price reaches its trigger
    is_trigger: bool

    @property
    def exit_reason(self) -> str:
        """The exit reason of a trade a reduce-only order of this type closes ("" for
        market and limit orders: their own reason says it)."""
        return _EXIT_REASONS.get(self, "")


_EXIT_REASONS = {OrderType.STOP_MARKET: "stop", OrderType.TAKE_PROFIT_MARKET: "take_profit"}


class OrderStatus(StrEnum):
    """One order lifecycle for every venue (SPEC 8): new -> accepted -> partially_filled
    -> filled, or -> canceled | rejected | expired; a live order whose request's outcome
    is not known yet is `unknown` until a lookup settles it (see domain.lifecycle)."""

    NEW = "new"
    UNKNOWN = "unknown"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    #: the order can still fill (or, `unknown`, may have)
    is_open: bool


class RunMode(StrEnum):
    """What kind of run this is, decided once from the profile, flags and command; it
    selects the feed, the venue and the clock from one table (orchestrator.modes)."""

    DEV = "dev"
    DRY_RUN = "dry_run"
    LIVE = "live"
    BACKTEST = "backtest"
    REPLAY = "replay"
    #: the test windows of a walk-forward analysis stitched into one out-of-sample run
    WALKFORWARD = "walkforward"


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class MarginMode(StrEnum):
    CROSS = "cross"
    ISOLATED = "isolated"


class TradingState(StrEnum):
    """ACTIVE trades freely; REDUCING lets only exposure-reducing orders through; HALTED none."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class DenialReason(StrEnum):
    """Reason codes carried by every risk denial (SPEC 2); public names, keep them exact."""

    MAX_ORDER_NOTIONAL = "MAX_ORDER_NOTIONAL"
    MAX_POSITION_NOTIONAL = "MAX_POSITION_NOTIONAL"
    MAX_LEVERAGE = "MAX_LEVERAGE"
    INSUFFICIENT_MARGIN = "INSUFFICIENT_MARGIN"
    DAILY_LOSS_LIMIT = "DAILY_LOSS_LIMIT"
    MAX_DRAWDOWN_HALT = "MAX_DRAWDOWN_HALT"
    STALE_MARKET_DATA = "STALE_MARKET_DATA"
    ORDER_RATE_LIMIT = "ORDER_RATE_LIMIT"
    REDUCE_ONLY_VIOLATION = "REDUCE_ONLY_VIOLATION"
    TRADING_HALTED = "TRADING_HALTED"
    CIRCUIT_BREAKER_OPEN = "CIRCUIT_BREAKER_OPEN"
    # The instrument's own filters (SPEC 8), applied after the risk gate to every venue:
    BELOW_MIN_QUANTITY = "BELOW_MIN_QUANTITY"
    BELOW_MIN_NOTIONAL = "BELOW_MIN_NOTIONAL"
    ABOVE_MAX_QUANTITY = "ABOVE_MAX_QUANTITY"
    PRICE_OUTSIDE_BAND = "PRICE_OUTSIDE_BAND"  # Binance PERCENT_PRICE: too far from the mark
    # A live order of the symbol has an unknown outcome (SPEC 9): nothing new until the
    # exchange says what became of it.
    ORDER_STATUS_UNKNOWN = "ORDER_STATUS_UNKNOWN"


# the members the per-order and per-fill paths read (see the module doc)
BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET, STOP_MARKET, TAKE_PROFIT_MARKET = (
    OrderType.LIMIT, OrderType.MARKET, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET
)  # fmt: skip
NEW, UNKNOWN, ACCEPTED = OrderStatus.NEW, OrderStatus.UNKNOWN, OrderStatus.ACCEPTED
PARTIALLY_FILLED, FILLED = OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED
CANCELED, REJECTED = OrderStatus.CANCELED, OrderStatus.REJECTED
MAKER, TAKER = Liquidity.MAKER, Liquidity.TAKER
HALTED, REDUCING = TradingState.HALTED, TradingState.REDUCING

for _side in Side:
    _side.sign = 1 if _side is BUY else -1
for _type in OrderType:
    _type.is_trigger = _type is STOP_MARKET or _type is TAKE_PROFIT_MARKET
for _status in OrderStatus:
    _status.is_open = _status in (NEW, UNKNOWN, ACCEPTED, PARTIALLY_FILLED)
del _side, _type, _status
