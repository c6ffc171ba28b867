"""CandleColumns: one batch of a historical feed, kept as the feed's numpy columns
(and EventColumns, what it shares with the mock exchange's QuoteColumns).

Why columns and not a list of Candle objects: in a backtest most candles change
nothing but prices (no order rests, no liquidation is near, the strategy stays put).
The orchestrator walks such stretches column-wise (orchestrator.quiet) and builds a
Candle only for a candle a stage has to see one by one. Anything else that reads the
batch (a merged multi-symbol feed, the capture writer) sees an ordinary sequence of
events: iterating or slicing builds them all, in the feed's order, once; one index
builds one.

Other events of the batch (funding settlements) keep their places: `inserts` holds
(candle index they come before, event), in order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, overload

import numpy as np
import numpy.typing as npt

from perps_bot.domain import Candle, MarketEvent

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class EventColumns(Sequence[MarketEvent]):
    """A batch kept as columns: its own events (candles, quotes), built only when some
    reader needs them, and `inserts` (index among its own events they come before,
    event) in their places. Iterating or slicing builds the whole list once; one index
    builds one event."""

    __slots__ = ("_events", "inserts")

    def __init__(self, inserts: list[tuple[int, MarketEvent]]) -> None:
        self.inserts = inserts
        self._events: list[MarketEvent] | None = None

    def own_count(self) -> int:
        """How many of its own events (candles, quotes) the batch holds."""
        raise NotImplementedError

    def own_event(self, i: int) -> MarketEvent:
        """Its i-th own event (inserts not counted), built alone."""
        raise NotImplementedError

    def _own_events(self) -> list[MarketEvent]:
        raise NotImplementedError

    def events(self) -> list[MarketEvent]:
        """Every event of the batch in the feed's order (built once)."""
        events = self._events
        if events is None:
            events = self._events = self._merged()
        return events

    def _merged(self) -> list[MarketEvent]:
        own = self._own_events()
        if not self.inserts:
            return own
        events: list[MarketEvent] = []
        prev = 0
        for at, event in self.inserts:
            events.extend(own[prev:at])
            events.append(event)
            prev = at
        events.extend(own[prev:])
        return events

    def __len__(self) -> int:
        return self.own_count() + len(self.inserts)

    @overload
    def __getitem__(self, index: int) -> MarketEvent: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[MarketEvent]: ...

    def __getitem__(self, index: int | slice) -> MarketEvent | Sequence[MarketEvent]:
        if isinstance(index, slice) or self._events is not None:
            return self.events()[index]
        return self._one(index)

    def _one(self, index: int) -> MarketEvent:
        """Event `index` without building the others (a feed reads its last one)."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"event {index} of a batch of {n}")
        index %= n
        before = 0  # inserts before this event
        for at, event in self.inserts:
            if index < at + before:
                break
            if index == at + before:
                return event
            before += 1
        return self.own_event(index - before)

    def __iter__(self) -> Iterator[MarketEvent]:
        return iter(self.events())


class CandleLists(NamedTuple):
    ts: list[int]
    marks: list[float]  # the mark the ledger sees: the mark close, else the close
    low: list[float]
    high: list[float]
    close: list[float]


class CandleColumns(EventColumns):
    """One historical batch of candles of one symbol (see the module's docstring)."""

    __slots__ = ("_columns", "_lists", "symbol", "ts")

    def __init__(
        self,
        symbol: str,
        ts: IntArray,
        columns: tuple[IntArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray],
        mark_columns: tuple[FloatArray, FloatArray, FloatArray] | None,
        inserts: list[tuple[int, MarketEvent]],
    ) -> None:
        """`columns`: open_time, open, high, low, close, volume; `mark_columns`: mark close,
        high and low with NaN for unknown (None: no mark series)."""
        super().__init__(inserts)
        self.symbol = symbol
        self.ts = ts
        self._columns = (columns, mark_columns)
        self._lists: CandleLists | None = None

    @property
    def candles(self) -> int:
        return int(self.ts.shape[0])

    def candle(self, i: int) -> Candle:
        """The i-th candle (0-based among the candles, not counting inserts). The fields
        a quiet stretch reads come from `lists()`; open time, open and volume (and the
        mark series) are read from their arrays for this candle alone: a backtest builds
        a candle for a few of every hundred, so converting those columns whole would make
        objects mostly never read."""
        ts, _, low, high, close = self.lists()
        (open_time, open_, _, _, _, volume), marks = self._columns
        if marks is None:
            return Candle(ts[i], self.symbol, open_time.item(i), open_.item(i), high[i],
                          low[i], close[i], volume.item(i))  # fmt: skip
        mark, mark_high, mark_low = marks
        return Candle(ts[i], self.symbol, open_time.item(i), open_.item(i), high[i], low[i],
                      close[i], volume.item(i), _known(mark.item(i)),
                      _known(mark_high.item(i)), _known(mark_low.item(i)))  # fmt: skip

    def closes(self) -> list[float]:
        """The closes as Python floats (strategies that read only the close)."""
        return self.lists().close

    def mark_array(self) -> FloatArray:
        """`lists().marks` as a float64 array: the close column itself where there is no
        mark series (the equity snapshots a quiet stretch leaves as a recipe read it,
        storage.equity_marked)."""
        (_, _, _, _, close, _), marks = self._columns
        if marks is None:
            return np.ascontiguousarray(close, dtype=np.float64)
        return np.array(self.lists().marks, dtype=np.float64)

    def lists(self) -> CandleLists:
        """The columns a quiet stretch reads, as Python lists (indexing a list is what a
        per-candle loop does fastest; numpy per element is slower)."""
        lists = self._lists
        if lists is None:
            (_, _, high, low, close_array, _), marks = self._columns
            close: list[float] = close_array.tolist()
            if marks is None:
                marked = close  # the mark the ledger sees: the mark close, else the close
            else:
                marked = [
                    c if m is None else m for m, c in zip(_nullable(marks[0]), close, strict=True)
                ]
            lists = self._lists = CandleLists(self.ts.tolist(), marked, low.tolist(),
                                              high.tolist(), close)  # fmt: skip
        return lists

    def mark_inside(self, i: int, j: int, low: float, high: float) -> int:
        """The index of the first of candles i..j-1 whose mark went to `low` or below or
        to `high` or above inside it (the mark series' extremes), else j."""
        marks = self._columns[1]
        if marks is None:
            return j
        _, mark_high, mark_low = marks
        outside = np.flatnonzero((mark_low[i:j] <= low) | (mark_high[i:j] >= high))
        return i + int(outside[0]) if outside.size else j

    def _field_lists(self) -> list[Sequence[object]]:
        """Candle's fields as Python lists, in its order (every candle of the batch built
        at once: a merged feed or the capture writer reads them all)."""
        (open_time, open_, _, _, _, volume), marks = self._columns
        ts, _, low, high, close = self.lists()
        fields: list[Sequence[object]] = [
            ts,
            [self.symbol] * self.candles,
            open_time.tolist(),
            open_.tolist(),
            high,
            low,
            close,
            volume.tolist(),
        ]
        if marks is not None:
            fields.extend(_nullable(x) for x in marks)
        return fields

    # -- EventColumns ---------------------------------------------------------------
    def own_count(self) -> int:
        return self.candles

    def own_event(self, i: int) -> MarketEvent:
        return self.candle(i)

    def _own_events(self) -> list[MarketEvent]:
        return list(map(Candle, *self._field_lists()))


def _known(value: float) -> float | None:
    """NaN as None (the domain's 'unknown')."""
    return None if value != value else value


def _nullable(values: FloatArray) -> list[float | None]:
    """Floats with NaN turned into None (the domain's 'unknown')."""
    nan = np.isnan(values)
    if not nan.any():
        out: list[float | None] = values.tolist()
        return out
    obj: npt.NDArray[np.object_] = values.astype(object)
    obj[nan] = None
    result: list[float | None] = obj.tolist()
    return result
