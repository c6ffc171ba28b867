"""Market events: what a feed emits and every stage reads.

These are slotted dataclasses rather than pydantic models on purpose: a backtest
pushes millions of them through the pipeline and validation per event would
dominate the run time. Feeds validate their input once at the boundary (file
loader, exchange adapter); past that point the values are trusted. Prices are
floats here (speed); the ledger converts at its boundary where exactness matters.
All timestamps are integer milliseconds since the Unix epoch, UTC. Events are
`record`s (never changed once emitted, which mypy checks), except `Candle`: the bar
builder grows the open bar in place until it closes.
"""

from dataclasses import dataclass, field

from perps_bot.domain.enums import Side
from perps_bot.domain.pickled import by_fields
from perps_bot.domain.record import record


@record
class Quote:
    """Top of book plus last trade and mark price at `ts` (a tick)."""

    ts: int
    symbol: str
    last: float
    bid: float
    ask: float
    mark: float


@dataclass(slots=True)
class Candle:
    """An OHLCV bar, emitted when it closes: `ts` is the close time, `open_time` the open.

    Venues that simulate fills walk the candle's documented price path:
    open, then the nearer of high/low to the open, then the other, then close.
    `mark` is the mark price at close when a mark series is known, else None
    (then the close is used as the mark); `mark_high` / `mark_low` the mark's extremes
    inside the candle, which paper stops trigger on (venues.order_queue.mark_path).
    """

    ts: int
    symbol: str
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    mark: float | None = None
    mark_high: float | None = None
    mark_low: float | None = None

    def __init__(
        self,
        ts: int,
        symbol: str,
        open_time: int,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
        mark: float | None = None,
        mark_high: float | None = None,
        mark_low: float | None = None,
    ) -> None:
        """Written out, not generated (perps_bot.domain.record says why)."""
        self.ts = ts
        self.symbol = symbol
        self.open_time = open_time
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self.mark = mark
        self.mark_high = mark_high
        self.mark_low = mark_low

    def __reduce__(self) -> tuple[object, ...]:
        """Copied and pickled through `__init__` (perps_bot.domain.pickled)."""
        return by_fields(self)


@record
class PublicTrade:
    """A trade between other participants as the exchange published it (`ts` is the
    exchange's time); `taker` is the aggressor's side: a sell hits the bids."""

    ts: int
    price: float
    qty: float
    taker: Side


@record
class BookSnapshot:
    """A full order book (best first on each side) as [price, quantity] levels.

    `trades` are the public trades seen since the symbol's previous book (oldest first):
    they happened before this book was received, and queue models advance on them.
    `last` is the market's latest trade, of unknown age (maybe from before an order
    resting on this book existed): paper venues cross resting orders on `trades` and
    the other side, not on it (venues.order_queue.MatchPoint.through)."""

    ts: int
    symbol: str
    bids: list[tuple[float, float]] = field(default_factory=list)
    asks: list[tuple[float, float]] = field(default_factory=list)
    last: float | None = None
    mark: float | None = None
    trades: tuple[PublicTrade, ...] = ()


@record
class FundingRate:
    """A funding settlement at `ts` for `symbol` at `rate`, priced at `mark`."""

    ts: int
    symbol: str
    rate: float
    mark: float


@record
class MarkPrice:
    """A mark-price update without a trade (drives unrealized PnL and liquidation)."""

    ts: int
    symbol: str
    mark: float


MarketEvent = Quote | Candle | BookSnapshot | FundingRate | MarkPrice


def event_price(event: MarketEvent) -> float | None:
    """The last-traded price an event carries (what strategies and fills use), if any."""
    if isinstance(event, Quote):
        return event.last
    if isinstance(event, Candle):
        return event.close
    if isinstance(event, BookSnapshot):
        if event.last is not None:
            return event.last
        if event.bids and event.asks:
            return (event.bids[0][0] + event.asks[0][0]) / 2.0
    return None
