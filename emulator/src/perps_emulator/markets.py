"""Symbol specifications, the seeded price process and the synthetic order book.

Why this shape:
- Prices are floats snapped to the symbol's tick after every move: the emulator is a
  test double whose outputs are strings formatted to the tick's decimals, so a float
  carrying an exact multiple of the tick prints exactly. Incoming order quantities and
  prices are validated with Decimal (exact step/tick divisibility), see engine.py.
- One numpy Generator per symbol, seeded with crc32(f"{seed}:{symbol}") (never Python's
  hash(), which is salted per process): the same seed and the same sequence of step() /
  set_price() calls give identical prices, funding rates and books.
- The book is a pure function of the current price (plus the symbol's depth setting):
  best bid/ask straddle the last price one spread apart, levels are one spread apart
  and grow linearly in size away from the touch. Trades do not deplete it (documented
  simplification): a market order walks it, so slippage grows with size.
"""

import math
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

import numpy as np

from perps_emulator.instruments import GENERIC_LIQUIDATION_FEE, GENERIC_TIERS, INSTRUMENTS, Tier

QUOTE = "USDT"
DEFAULT_PRICES: dict[str, float] = {
    "BTCUSDT": 60_000.0,
    "ETHUSDT": 3_000.0,
    "SOLUSDT": 150.0,
    "BNBUSDT": 550.0,
    "XRPUSDT": 0.6,
    "DOGEUSDT": 0.15,
}
FUNDING_INTERVAL_MS = 8 * 3_600_000
FUNDING_MEAN = 0.0001  # Binance's neutral 0.01% per 8h
FUNDING_CAP = 0.003
MAX_BOOK_LEVELS = 1000
HISTORY_LEN = 20_000
#: PERCENT_PRICE: a limit buy at most mark * up, a limit sell at least mark * down
PRICE_UP, PRICE_DOWN = Decimal("1.0500"), Decimal("0.9500")


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """Exchange rules for one perpetual; mirrors Binance's exchangeInfo filters."""

    symbol: str
    base: str
    tick: Decimal
    step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    initial_price: float
    level_qty: float  # base quantity at the best level; deeper levels grow linearly
    volatility: float  # standard deviation of the log return per step
    max_leverage: int
    tiers: tuple[Tier, ...]
    liquidation_fee: float
    #: MAX_NUM_ALGO_ORDERS: open conditional orders (stops, take-profits) per symbol
    max_algo_orders: int = 10

    @property
    def price_decimals(self) -> int:
        return _decimals(self.tick)

    @property
    def qty_decimals(self) -> int:
        return _decimals(self.step)

    def round_price(self, price: float) -> float:
        """Nearest multiple of the tick (as a float that prints exactly)."""
        ticks = round(price / float(self.tick))
        return float(Decimal(max(ticks, 1)) * self.tick)

    def floor_price(self, price: float) -> float:
        ticks = (Decimal(repr(price)) / self.tick).to_integral_value(rounding=ROUND_FLOOR)
        return float(max(ticks, Decimal(1)) * self.tick)

    def round_qty(self, qty: float) -> float:
        return round(qty, self.qty_decimals)

    def fmt_price(self, price: float) -> str:
        return f"{price:.{self.price_decimals}f}"

    def fmt_qty(self, qty: float) -> str:
        return f"{qty:.{self.qty_decimals}f}"


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _max_leverage(tiers: tuple[Tier, ...]) -> int:
    return int(1 / (2 * tiers[0][1]))


def make_spec(symbol: str, price: float | None = None) -> SymbolSpec:
    """The listed rules (instruments.py) for known symbols; a magnitude-based rule otherwise."""
    if not symbol.endswith(QUOTE) or len(symbol) <= len(QUOTE):
        raise ValueError(
            f"emulator symbols must be USDT perpetual ids like BTCUSDT, got {symbol!r}"
        )
    base = symbol[: -len(QUOTE)]
    initial = price if price is not None else DEFAULT_PRICES.get(symbol, 100.0)
    if initial <= 0:
        raise ValueError(f"initial price for {symbol} must be > 0, got {initial}")
    listed = INSTRUMENTS.get(symbol)
    if listed is not None:
        tick, step = Decimal(listed.tick), Decimal(listed.step)
        min_qty, max_qty = Decimal(listed.min_qty), Decimal(listed.max_qty)
        market_max = Decimal(listed.market_max_qty)
        min_notional = Decimal(listed.min_notional)
        tiers, liquidation_fee = listed.tiers, listed.liquidation_fee
    else:
        magnitude = math.floor(math.log10(initial))
        tick = Decimal(1).scaleb(magnitude - 4)
        step = Decimal(1).scaleb(min(3, max(-3, math.floor(math.log10(5.0 / initial)))))
        min_qty, max_qty = step, step * Decimal(10_000_000)
        market_max = step * Decimal(1_000_000)
        min_notional = Decimal(5)
        tiers, liquidation_fee = GENERIC_TIERS, GENERIC_LIQUIDATION_FEE
    rounded_initial = float(
        (Decimal(repr(initial)) / tick).to_integral_value() * tick
        if initial >= float(tick)
        else tick
    )
    return SymbolSpec(
        symbol=symbol,
        base=base,
        tick=tick,
        step=step,
        min_qty=min_qty,
        max_qty=max_qty,
        market_max_qty=market_max,
        min_notional=min_notional,
        initial_price=rounded_initial,
        # Depth worth about 100k USDT at the touch, at least one step.
        level_qty=float(max(step, (Decimal(100_000.0 / initial) // step) * step)),
        volatility=2e-4,
        max_leverage=_max_leverage(tiers),
        tiers=tiers,
        liquidation_fee=liquidation_fee,
    )


@dataclass(slots=True)
class BookLevel:
    price: float
    qty: float


@dataclass(slots=True)
class PriceProcess:
    """Last/mark/index price and funding rate of one symbol, moved by step()."""

    spec: SymbolSpec
    seed: int
    last: float = 0.0
    basis: float = 0.0  # mark = last * (1 + basis)
    funding_rate: float = FUNDING_MEAN
    update_id: int = 1
    history: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=HISTORY_LEN))
    rng: np.random.Generator = field(init=False)
    #: (is bid, price, default qty) -> displayed qty; set by flow.Microstructure, else the
    #: book is the pure function of the price below
    depth_of: Callable[[bool, float, float], float] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(zlib.crc32(f"{self.seed}:{self.spec.symbol}".encode()))
        self.last = self.spec.initial_price

    @property
    def mark(self) -> float:
        return self.spec.round_price(self.last * (1.0 + self.basis))

    @property
    def index(self) -> float:
        return self.spec.round_price(self.last * (1.0 + 0.5 * self.basis))

    def step(self, now_ms: int) -> None:
        """One seeded move: log-normal price step, mean-reverting funding and basis."""
        z_price, z_funding, z_basis = self.rng.standard_normal(3)
        vol = self.spec.volatility
        self.last = self.spec.round_price(self.last * math.exp(vol * z_price - 0.5 * vol * vol))
        funding = self.funding_rate + 0.05 * (FUNDING_MEAN - self.funding_rate)
        self.funding_rate = min(FUNDING_CAP, max(-FUNDING_CAP, funding + 1e-5 * float(z_funding)))
        self.basis = 0.9 * self.basis + 5e-5 * float(z_basis)
        self.touch(now_ms)

    def set_price(self, price: float, now_ms: int) -> None:
        if price <= 0:
            raise ValueError(f"price must be > 0, got {price}")
        self.last = self.spec.round_price(price)
        self.basis = 0.0
        self.touch(now_ms)

    def set_mark(self, mark: float, now_ms: int) -> None:
        """Move the mark alone (through the basis): the book and last price stay put, so a
        test can move what margin and liquidation see without filling resting orders."""
        if mark <= 0:
            raise ValueError(f"mark must be > 0, got {mark}")
        self.basis = self.spec.round_price(mark) / self.last - 1.0
        self.touch(now_ms)

    def touch(self, now_ms: int) -> None:
        self.update_id += 1
        self.history.append((now_ms, self.last))

    # --- book -------------------------------------------------------------------------

    @property
    def spread(self) -> float:
        tick = float(self.spec.tick)
        return max(1, round(self.last * 1e-5 / tick)) * tick

    @property
    def best_bid(self) -> float:
        return self.spec.floor_price(self.last - self.spread / 2.0)

    @property
    def best_ask(self) -> float:
        return self.spec.round_price(self.best_bid + self.spread)

    def level_qty(self, index: int) -> float:
        return self.spec.round_qty(self.spec.level_qty * (1.0 + 0.25 * index))

    def bids(self, depth: int) -> list[BookLevel]:
        best, gap = self.best_bid, self.spread
        levels = []
        for i in range(depth):
            price = self.spec.round_price(best - i * gap)
            if price <= float(self.spec.tick) and i > 0:
                break
            levels.append(BookLevel(price, self._shown(True, price, i)))
        return [level for level in levels if level.qty > 0]

    def asks(self, depth: int) -> list[BookLevel]:
        best, gap = self.best_ask, self.spread
        levels = [
            BookLevel(price, self._shown(False, price, i))
            for i in range(depth)
            for price in (self.spec.round_price(best + i * gap),)
        ]
        return [level for level in levels if level.qty > 0]

    def _shown(self, bid: bool, price: float, index: int) -> float:
        if self.depth_of is None:
            return self.level_qty(index)
        return self.spec.round_qty(self.depth_of(bid, price, self.level_qty(index)))

    def walk(self, side: str, qty: float, limit_price: float | None) -> list[BookLevel]:
        """Levels a taker order of ``qty`` would consume (BUY walks asks), within limit."""
        levels = self.asks(MAX_BOOK_LEVELS) if side == "BUY" else self.bids(MAX_BOOK_LEVELS)
        fills: list[BookLevel] = []
        remaining = qty
        for level in levels:
            if remaining <= 0:
                break
            if limit_price is not None and (
                (side == "BUY" and level.price > limit_price)
                or (side == "SELL" and level.price < limit_price)
            ):
                break
            take = self.spec.round_qty(min(remaining, level.qty))
            fills.append(BookLevel(level.price, take))
            remaining = self.spec.round_qty(remaining - take)
        if remaining > 0 and limit_price is None and levels:
            fills.append(BookLevel(levels[-1].price, remaining))  # beyond the book: last level
        return fills

    def next_funding_time(self, now_ms: int) -> int:
        return (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
