"""Signals, orders and fills: what crosses the strategy -> risk -> execution -> ledger seams.

Slotted dataclasses for the same reason as market events (they are created per
trade in tight loops); the journal turns them into pydantic event records when
it writes them. Sizes are base-asset quantities (e.g. BTC), always positive;
the side carries the direction. Intents, targets and updates are values (their
fields `Final`: never changed once made, which mypy checks; every class here writes its
`__init__` out, perps_bot.domain.record says why); an `Order` is the state machine's mutable
state, and a `Fill` stays plain because a live venue sets the exchange's commission
on it before handing it out.
"""

from dataclasses import dataclass
from typing import Final

from perps_bot.domain.enums import Liquidity, OrderStatus, OrderType, Side
from perps_bot.domain.pickled import by_fields

#: The portfolio of a run that trades one strategy (SPEC 10: a profile with the single
#: `strategy:` section is one portfolio).
DEFAULT_PORTFOLIO = "main"
#: The whole account of a run with several portfolios, where portfolios are named (the
#: metrics' `portfolio` label, the session stream and chart): no portfolio may be it.
ACCOUNT = "account"


def portfolio_run_id(run_id: str, portfolio: str, several: bool) -> str:
    """The run id a portfolio's orders, fills and curve are stored under: its own child
    run (`RUN.ID`) in a run of several portfolios, the run itself in a run of one."""
    return f"{run_id}.{portfolio}" if several else run_id


@dataclass(slots=True, unsafe_hash=True)
class OrderIntent:
    """An order a strategy would like to place; the risk gate may resize or deny it.

    `stop_price` is the protective stop the strategy plans for this entry: it is
    not an order, it records the risk taken (stop distance x size) for the
    trade's `r_multiple`, and strategies exit on it themselves. `stop_loss` and
    `take_profit` are orders (SPEC 16): once the entry fills, reduce-only stop and
    take-profit orders protect the position, one cancelling the other.
    """

    symbol: Final[str]
    side: Final[Side]
    size: Final[float]
    order_type: Final[OrderType]
    limit_price: Final[float | None]
    reduce_only: Final[bool]
    reason: Final[str]
    stop_price: Final[float | None]
    stop_loss: Final[float | None]
    take_profit: Final[float | None]

    def __init__(
        self,
        symbol: str,
        side: Side,
        size: float,
        order_type: OrderType = OrderType.MARKET,
        limit_price: float | None = None,
        reduce_only: bool = False,
        reason: str = "",
        stop_price: float | None = None,
        stop_loss: float | None = None,
        take_profit: float | None = None,
    ) -> None:
        """Written out, not generated (perps_bot.domain.record says why)."""
        self.symbol = symbol
        self.side = side
        self.size = size
        self.order_type = order_type
        self.limit_price = limit_price
        self.reduce_only = reduce_only
        self.reason = reason
        self.stop_price = stop_price
        self.stop_loss = stop_loss
        self.take_profit = take_profit

    def __reduce__(self) -> tuple[object, ...]:
        """Copied and pickled through `__init__` (perps_bot.domain.pickled)."""
        return by_fields(self)


@dataclass(slots=True, unsafe_hash=True)
class TargetPosition:
    """A desired signed position (+long / -short / 0 flat); the orchestrator diffs it
    against the current position and turns the difference into an OrderIntent."""

    symbol: Final[str]
    size: Final[float]
    reason: Final[str]
    stop_price: Final[float | None]
    stop_loss: Final[float | None]
    take_profit: Final[float | None]

    def __init__(
        self,
        symbol: str,
        size: float,
        reason: str = "",
        stop_price: float | None = None,
        stop_loss: float | None = None,
        take_profit: float | None = None,
    ) -> None:
        """Written out, not generated (perps_bot.domain.record says why)."""
        self.symbol = symbol
        self.size = size
        self.reason = reason
        self.stop_price = stop_price
        self.stop_loss = stop_loss
        self.take_profit = take_profit

    def __reduce__(self) -> tuple[object, ...]:
        """Copied and pickled through `__init__` (perps_bot.domain.pickled)."""
        return by_fields(self)


Signal = OrderIntent | TargetPosition


def closing_intent(symbol: str, held: float, reason: str) -> OrderIntent:
    """The position `held` (signed, not 0) closed at market, reduce-only: never more than
    it, whatever else rests (a target of 0 counts an entry still resting as if it had
    filled, and would sell it too)."""
    side = Side.SELL if held > 0 else Side.BUY
    return OrderIntent(symbol, side, abs(held), reduce_only=True, reason=reason)


@dataclass(slots=True)
class Order:
    """An approved order as sent to a venue. `client_id` is unique per run and is the
    idempotency key for live retries; `correlation_id` links signal -> order -> fill.
    `trigger_price`: where a stop / take-profit order becomes a market order;
    `stop_loss` / `take_profit`: the protection an entry asks for once it fills."""

    client_id: str
    symbol: str
    side: Side
    size: float
    order_type: OrderType
    price: float | None
    reduce_only: bool
    created_ts: int
    correlation_id: str
    reason: str = ""
    stop_price: float | None = None
    status: OrderStatus = OrderStatus.NEW
    filled: float = 0.0
    avg_price: float = 0.0
    exchange_id: str | None = None
    #: why the order is in its current status (e.g. "reduce-only: no position to reduce")
    status_reason: str = ""
    updated_ts: int = 0
    portfolio: str = DEFAULT_PORTFOLIO
    trigger_price: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None

    def __init__(
        self,
        client_id: str,
        symbol: str,
        side: Side,
        size: float,
        order_type: OrderType,
        price: float | None,
        reduce_only: bool,
        created_ts: int,
        correlation_id: str,
        reason: str = "",
        stop_price: float | None = None,
        status: OrderStatus = OrderStatus.NEW,
        filled: float = 0.0,
        avg_price: float = 0.0,
        exchange_id: str | None = None,
        status_reason: str = "",
        updated_ts: int = 0,
        portfolio: str = DEFAULT_PORTFOLIO,
        trigger_price: float | None = None,
        stop_loss: float | None = None,
        take_profit: float | None = None,
    ) -> None:
        """Written out, not generated (perps_bot.domain.record says why)."""
        self.client_id = client_id
        self.symbol = symbol
        self.side = side
        self.size = size
        self.order_type = order_type
        self.price = price
        self.reduce_only = reduce_only
        self.created_ts = created_ts
        self.correlation_id = correlation_id
        self.reason = reason
        self.stop_price = stop_price
        self.status = status
        self.filled = filled
        self.avg_price = avg_price
        self.exchange_id = exchange_id
        self.status_reason = status_reason
        self.updated_ts = updated_ts
        self.portfolio = portfolio
        self.trigger_price = trigger_price
        self.stop_loss = stop_loss
        self.take_profit = take_profit

    def __reduce__(self) -> tuple[object, ...]:
        """Copied and pickled through `__init__` (perps_bot.domain.pickled)."""
        return by_fields(self)

    @property
    def remaining(self) -> float:
        return max(self.size - self.filled, 0.0)


@dataclass(slots=True)
class Fill:
    """One execution. `fee` is the fee paid in quote currency (positive = cost).
    `is_liquidation` marks the forced close the ledger makes at the liquidation price."""

    ts: int
    symbol: str
    side: Side
    size: float
    price: float
    fee: float
    liquidity: Liquidity
    client_id: str
    correlation_id: str
    reason: str = ""
    is_liquidation: bool = False
    stop_price: float | None = None

    def __init__(
        self,
        ts: int,
        symbol: str,
        side: Side,
        size: float,
        price: float,
        fee: float,
        liquidity: Liquidity,
        client_id: str,
        correlation_id: str,
        reason: str = "",
        is_liquidation: bool = False,
        stop_price: float | None = None,
    ) -> None:
        """Written out, not generated (perps_bot.domain.record says why)."""
        self.ts = ts
        self.symbol = symbol
        self.side = side
        self.size = size
        self.price = price
        self.fee = fee
        self.liquidity = liquidity
        self.client_id = client_id
        self.correlation_id = correlation_id
        self.reason = reason
        self.is_liquidation = is_liquidation
        self.stop_price = stop_price

    def __reduce__(self) -> tuple[object, ...]:
        """Copied and pickled through `__init__` (perps_bot.domain.pickled)."""
        return by_fields(self)


@dataclass(slots=True, unsafe_hash=True)
class OrderUpdate:
    """One change of an order's lifecycle, as a venue reports it (SPEC 8). A snapshot:
    the order object itself keeps changing after the update was made; the update never
    does (its fields are `Final` to the type checker, and it is as cheap as a plain
    dataclass to build: every order makes at least two)."""

    ts: Final[int]
    client_id: Final[str]
    symbol: Final[str]
    status: Final[OrderStatus]
    filled: Final[float]
    avg_price: Final[float]
    reason: Final[str]
    order: Final[Order]

    def __init__(
        self,
        ts: int,
        client_id: str,
        symbol: str,
        status: OrderStatus,
        filled: float,
        avg_price: float,
        reason: str,
        order: Order,
    ) -> None:
        """Written out, not generated (perps_bot.domain.record says why)."""
        self.ts = ts
        self.client_id = client_id
        self.symbol = symbol
        self.status = status
        self.filled = filled
        self.avg_price = avg_price
        self.reason = reason
        self.order = order

    def __reduce__(self) -> tuple[object, ...]:
        """Copied and pickled through `__init__` (perps_bot.domain.pickled)."""
        return by_fields(self)


def fill_of(
    order: Order, ts: int, size: float, price: float, fee: float, liquidity: Liquidity
) -> Fill:
    """An execution of `order`: it carries the order's identity (client id, correlation
    id, reason, planned stop) so every venue's fills link back the same way. Built
    positionally, in field order: a keyword call to a class packs a dict first (~5k more
    instructions for these fields), once per fill."""
    return Fill(ts, order.symbol, order.side, size, price, fee, liquidity, order.client_id,
                order.correlation_id, order.reason, False, order.stop_price)  # fmt: skip
