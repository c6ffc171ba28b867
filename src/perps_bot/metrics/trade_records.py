"""A round trip's records: `Trade`, closed (a trades.csv row, `TRADE_COLUMNS`), and
`OpenTrade`, what the fills so far add up to; metrics.trades builds them from fills.

Floats, not Decimal: report statistics over ledger outputs (metrics.trades says why).
Both are built once or more per fill of a backtest: native classes with their
`__init__` written out (perps_bot.domain.record says why).
"""

from dataclasses import dataclass
from typing import Final

from perps_bot.domain import DEFAULT_PORTFOLIO
from perps_bot.domain.pickled import by_fields

TRADE_COLUMNS: tuple[str, ...] = (
    "trade_id",
    "symbol",
    "side",
    "open_time",
    "close_time",
    "size",
    "entry_price",
    "exit_price",
    "gross_pnl",
    "fees",
    "funding",
    "net_pnl",
    "exit_reason",
    "r_multiple",
    "mae",
    "mfe",
)


@dataclass(slots=True, unsafe_hash=True)
class Trade:
    trade_id: Final[int]
    symbol: Final[str]
    side: Final[str]  # "long" | "short"
    open_ts: Final[int]
    close_ts: Final[int]
    size: Final[float]
    entry_price: Final[float]
    exit_price: Final[float]
    gross_pnl: Final[float]
    fees: Final[float]
    funding: Final[float]
    net_pnl: Final[float]
    exit_reason: Final[str]
    r_multiple: Final[float | None]
    mae: Final[float | None]
    mfe: Final[float | None]
    is_liquidation: Final[bool]
    #: the portfolio whose trade it is (SPEC 10; `main` in a one-strategy run)
    portfolio: Final[str]

    def __init__(
        self,
        trade_id: int,
        symbol: str,
        side: str,
        open_ts: int,
        close_ts: int,
        size: float,
        entry_price: float,
        exit_price: float,
        gross_pnl: float,
        fees: float,
        funding: float,
        net_pnl: float,
        exit_reason: str,
        r_multiple: float | None,
        mae: float | None,
        mfe: float | None,
        is_liquidation: bool,
        portfolio: str = DEFAULT_PORTFOLIO,
    ) -> None:
        """Written out, not generated (perps_bot.domain.record says why)."""
        self.trade_id = trade_id
        self.symbol = symbol
        self.side = side
        self.open_ts = open_ts
        self.close_ts = close_ts
        self.size = size
        self.entry_price = entry_price
        self.exit_price = exit_price
        self.gross_pnl = gross_pnl
        self.fees = fees
        self.funding = funding
        self.net_pnl = net_pnl
        self.exit_reason = exit_reason
        self.r_multiple = r_multiple
        self.mae = mae
        self.mfe = mfe
        self.is_liquidation = is_liquidation
        self.portfolio = portfolio

    def __reduce__(self) -> tuple[object, ...]:
        """Copied and pickled through `__init__` (perps_bot.domain.pickled)."""
        return by_fields(self)

    @property
    def duration_s(self) -> float:
        return (self.close_ts - self.open_ts) / 1000.0

    @property
    def return_pct(self) -> float | None:
        return return_pct(self.net_pnl, self.entry_price, self.size)


def return_pct(net_pnl: float, entry_price: float, size: float) -> float | None:
    """A trade's net PnL as a percentage of its entry notional (entry_price * size)."""
    notional = entry_price * size
    return net_pnl / notional * 100.0 if notional > 0 else None


@dataclass(slots=True)
class OpenTrade:
    """A round trip still open: what the fills so far added up to."""

    symbol: str
    direction: int  # +1 long, -1 short
    open_ts: int
    stop_price: float | None
    entry_qty: float = 0.0
    entry_notional: float = 0.0
    exit_qty: float = 0.0
    exit_notional: float = 0.0
    max_size: float = 0.0
    gross: float = 0.0
    fees: float = 0.0
    funding: float = 0.0  # only when fed by `RoundTripBuilder.add_funding` (the run log)

    def __init__(
        self,
        symbol: str,
        direction: int,
        open_ts: int,
        stop_price: float | None,
        entry_qty: float = 0.0,
        entry_notional: float = 0.0,
        exit_qty: float = 0.0,
        exit_notional: float = 0.0,
        max_size: float = 0.0,
        gross: float = 0.0,
        fees: float = 0.0,
        funding: float = 0.0,
    ) -> None:
        """Written out, not generated (perps_bot.domain.record says why)."""
        self.symbol = symbol
        self.direction = direction
        self.open_ts = open_ts
        self.stop_price = stop_price
        self.entry_qty = entry_qty
        self.entry_notional = entry_notional
        self.exit_qty = exit_qty
        self.exit_notional = exit_notional
        self.max_size = max_size
        self.gross = gross
        self.fees = fees
        self.funding = funding

    def __reduce__(self) -> tuple[object, ...]:
        """A checkpoint keeps the open round trips (perps_bot.domain.pickled)."""
        return by_fields(self)

    def add_entry(self, qty: float, price: float, fee: float, position_after: float) -> None:
        self.entry_qty += qty
        self.entry_notional += qty * price
        self.fees += fee
        self.max_size = max(self.max_size, abs(position_after))

    def add_exit(self, qty: float, price: float, fee: float, realized: float) -> None:
        self.exit_qty += qty
        self.exit_notional += qty * price
        self.fees += fee
        self.gross += realized

    @property
    def entry_price(self) -> float:
        return self.entry_notional / self.entry_qty if self.entry_qty else 0.0

    @property
    def exit_price(self) -> float:
        return self.exit_notional / self.exit_qty if self.exit_qty else 0.0

    @property
    def net_pnl(self) -> float:
        """gross - fees + funding, funding as fed to `RoundTripBuilder.add_funding`."""
        return self.gross - self.fees + self.funding
