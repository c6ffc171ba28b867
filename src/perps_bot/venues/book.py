"""Order-book representation and the synthetic book of the simulated venues.

A book is two lists of `(price, quantity)` levels, best first, exactly the shape
of `BookSnapshot.bids/asks`, so the matching engine walks a real snapshot (paper
trading on a real book) and a synthesized one (mock exchange, backtest) with the
same code.

The synthetic book is described, not stored: `SyntheticBook` holds the shape
(levels, spacing, depth growth) and builds the levels of one side only when an
order needs them, and of that side (`SyntheticSide`) only the levels it reads. The
mock feed emits a quote per symbol per second and most of them meet no order, and a
market order mostly takes the touch alone, so materializing 2 x 20 levels per quote
or 20 per order would be wasted work.

Synthetic level i on the ask side sits at `ask * (1 + i * level_spacing_bps / 1e4)`
(bids mirror it downwards) and holds `depth * (1 + depth_growth) ** i`. The touch
(level 0) is either the quote's own bid/ask, so a buy pays the ask the strategy
saw, or `mid * (1 -/+ spread_bps / 2e4)` when only a price is known (candles).
Prices are floats: the book is a simulation input, not an accounting record.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import overload

from perps_bot.domain import BookSnapshot, Side
from perps_bot.domain.enums import BUY, SELL
from perps_bot.domain.record import record

Level = tuple[float, float]
"""One price level: (price, quantity in base units)."""


@dataclass(slots=True)
class Book:
    """Both sides of a book, best level first (bids descending, asks ascending)."""

    bids: Sequence[Level] = field(default_factory=list)
    asks: Sequence[Level] = field(default_factory=list)

    @classmethod
    def from_snapshot(cls, snapshot: BookSnapshot) -> "Book":
        return cls(bids=snapshot.bids, asks=snapshot.asks)

    def liquidity_for(self, taker_side: Side) -> Sequence[Level]:
        """The levels a taker on `taker_side` consumes: asks for a buy, bids for a sell."""
        return self.asks if taker_side is BUY else self.bids

    @property
    def best_bid(self) -> float | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> float | None:
        return self.asks[0][0] if self.asks else None


def touch_around(mid: float, spread_bps: float) -> tuple[float, float]:
    """(bid, ask) at -/+ half the spread around `mid`."""
    half = mid * spread_bps / 2e4
    return mid - half, mid + half


class SyntheticSide(Sequence[Level]):
    """One side of a synthetic book whose levels are computed when read (`SyntheticBook`
    gives each one's formula): a market order mostly takes the touch alone, so building
    every level would be wasted work. Level i is the same float whenever it is read."""

    __slots__ = ("_count", "_depth", "_growth", "_step", "_touch")

    def __init__(self, touch: float, step: float, depth: float, growth: float, count: int):
        self._touch = touch
        self._step = step  # signed: deeper asks are higher, deeper bids lower
        self._depth = depth
        self._growth = growth
        self._count = count

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> Level: ...

    @overload
    def __getitem__(self, index: slice) -> list[Level]: ...

    def __getitem__(self, index: int | slice) -> Level | list[Level]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        i = index + self._count if index < 0 else index
        if not 0 <= i < self._count:
            raise IndexError(index)
        return self._level(i)

    def __iter__(self) -> Iterator[Level]:
        for i in range(self._count):
            yield self._level(i)

    def _level(self, i: int) -> Level:
        return self._touch * (1.0 + i * self._step), self._depth * self._growth**i

    def __repr__(self) -> str:
        return f"SyntheticSide({list(self)!r})"


@record
class SyntheticBook:
    """The shape of the mock exchange's book; levels are built on demand."""

    levels: int = 20
    spread_bps: float = 10.0
    level_spacing_bps: float = 1.0
    depth_growth: float = 0.15

    def side(self, taker_side: Side, bid: float, ask: float, depth: float) -> Sequence[Level]:
        """The levels a taker on `taker_side` would consume, best first.

        `bid`/`ask` are the touch, `depth` the quantity at the best level.
        """
        step = self.level_spacing_bps / 1e4
        growth = 1.0 + self.depth_growth
        if taker_side is BUY:
            return SyntheticSide(ask, step, depth, growth, self.levels)
        # bid * (1.0 + i * -step) is bid * (1.0 - i * step) to the bit
        return SyntheticSide(bid, -step, depth, growth, self.levels)

    def around_touch(self, bid: float, ask: float, depth: float) -> Book:
        """A full book whose best levels are `bid` and `ask`."""
        return Book(
            bids=self.side(SELL, bid, ask, depth),
            asks=self.side(BUY, bid, ask, depth),
        )

    def around_mid(self, mid: float, depth: float) -> Book:
        """A full book centred on `mid` with this book's spread."""
        bid, ask = touch_around(mid, self.spread_bps)
        return self.around_touch(bid, ask, depth)
