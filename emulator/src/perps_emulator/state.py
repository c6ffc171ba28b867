"""What the emulated account holds: orders, positions, trades, income and funding.

Plain records with no behaviour beyond derived read-only properties, so tests can
read ``server.state`` directly and the engine, the liquidator and the REST handlers
share one picture of the account. Floats throughout (see markets.py for why).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

MAKER_FEE = 0.0002
TAKER_FEE = 0.0005
DEFAULT_LEVERAGE = 20
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")


@dataclass(slots=True)
class EmuOrder:
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    price: float
    orig_qty: float
    reduce_only: bool
    time: int
    update_time: int
    executed_qty: float = 0.0
    cum_quote: float = 0.0
    status: str = "NEW"
    auto_close: str = ""  # "LIQUIDATION" for the exchange's own closing orders
    orig_type: str = ""  # a triggered algo order's type (STOP_MARKET...); else `type`
    stop_price: float = 0.0  # a triggered algo order's trigger price

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> float:
        return self.orig_qty - self.executed_qty

    @property
    def avg_price(self) -> float:
        return self.cum_quote / self.executed_qty if self.executed_qty > 0 else 0.0


#: algo (conditional) order statuses that may still trigger
ALGO_OPEN_STATUSES = ("NEW",)


@dataclass(slots=True)
class EmuAlgoOrder:
    """A conditional STOP_MARKET / TAKE_PROFIT_MARKET order (algo.py)."""

    algo_id: int
    client_algo_id: str
    symbol: str
    side: str
    type: str
    trigger_price: float
    working_type: str  # MARK_PRICE | CONTRACT_PRICE
    quantity: float  # 0.0 with close_position
    reduce_only: bool
    close_position: bool
    time: int
    update_time: int
    status: str = "NEW"  # NEW | CANCELED | FINISHED | EXPIRED
    actual_order_id: int | None = None  # the market order it became when it triggered
    trigger_time: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in ALGO_OPEN_STATUSES


@dataclass(slots=True)
class EmuPosition:
    symbol: str
    amount: float = 0.0  # signed base quantity (one-way mode)
    entry_price: float = 0.0
    update_time: int = 0
    # Isolated wallet of the position (margin type ISOLATED only): notional / leverage
    # posted by each opening fill, reduced pro rata by closes, plus funding.
    isolated_margin: float = 0.0


@dataclass(slots=True)
class EmuTrade:
    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: float
    qty: float
    commission: float
    realized_pnl: float
    maker: bool
    time: int


@dataclass(slots=True)
class EmuIncome:
    tran_id: int
    symbol: str
    income_type: str  # REALIZED_PNL | COMMISSION | FUNDING_FEE | INSURANCE_CLEAR
    income: float
    time: int
    trade_id: str = ""


@dataclass(slots=True)
class FundingSettlement:
    symbol: str
    rate: float
    time: int
    mark_price: float


@dataclass
class EmulatorState:
    """Everything the emulated account holds; tests read it directly.

    ``balances[USDT]`` is the whole wallet, isolated position wallets included; the
    cross wallet is that minus the positions' ``isolated_margin``.
    """

    balances: dict[str, float]
    positions: dict[str, EmuPosition]
    leverage: dict[str, int]
    margin_type: dict[str, str]  # CROSSED | ISOLATED
    orders: dict[int, EmuOrder] = field(default_factory=dict)
    orders_by_client_id: dict[str, EmuOrder] = field(default_factory=dict)
    trades: list[EmuTrade] = field(default_factory=list)
    income: list[EmuIncome] = field(default_factory=list)
    funding_history: list[FundingSettlement] = field(default_factory=list)
    algo_orders: dict[int, EmuAlgoOrder] = field(default_factory=dict)

    @property
    def open_orders(self) -> dict[int, EmuOrder]:
        return {oid: order for oid, order in self.orders.items() if order.is_open}

    @property
    def open_orders_by_client_id(self) -> dict[str, EmuOrder]:
        return {o.client_order_id: o for o in self.orders.values() if o.is_open}

    def isolated(self, symbol: str) -> bool:
        return self.margin_type[symbol] == "ISOLATED"


def open_orders(state: EmulatorState, symbol: str | None) -> Iterable[EmuOrder]:
    return (
        o for o in state.orders.values() if o.is_open and (symbol is None or o.symbol == symbol)
    )
