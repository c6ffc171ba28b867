"""CandleColumns: one batch of a historical feed, kept as the feed's numpy columns.

Why columns and not a list of Candle objects: in a backtest most candles change
nothing but prices (no order rests, no liquidation is near, the strategy stays put).
The orchestrator walks such stretches column-wise (orchestrator.quiet) and builds a
Candle only for a candle a stage has to see one by one. Anything else that reads the
batch (a merged multi-symbol feed, the capture writer) sees an ordinary sequence of
events: indexing or iterating builds them all, in the feed's order, once.

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


class CandleLists(NamedTuple):
    ts: list[int]
    marks: list[float]  # the mark the ledger sees: the mark close, else the close
    low: list[float]
    high: list[float]
    close: list[float]


class CandleColumns(Sequence[MarketEvent]):
    __slots__ = (
        "_columns",
        "_events",
        "_fields",
        "_lists",
        "inserts",
        "symbol",
        "ts",
    )

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
        self.symbol = symbol
        self.ts = ts
        self.inserts = inserts
        self._fields: list[Sequence[object]] | None = None
        self._columns = (columns, mark_columns)
        self._events: list[MarketEvent] | None = None
        self._lists: CandleLists | None = None

    @property
    def candles(self) -> int:
        return int(self.ts.shape[0])

    def candle(self, i: int) -> Candle:
        """The i-th candle (0-based among the candles, not counting inserts)."""
        return Candle(*(column[i] for column in self._field_lists()))  # type: ignore[arg-type]

    def closes(self) -> list[float]:
        """The closes as Python floats (strategies that read only the close)."""
        return self.lists().close

    def lists(self) -> CandleLists:
        """The columns a quiet stretch reads, as Python lists (indexing a list is what a
        per-candle loop does fastest; numpy per element is slower)."""
        lists = self._lists
        if lists is None:
            fields = self._field_lists()
            close: list[float] = fields[6]  # type: ignore[assignment]
            marks = close  # the mark the ledger sees: the mark close, else the close
            if len(fields) > 8:
                mark_close: list[float | None] = fields[8]  # type: ignore[assignment]
                marks = [c if m is None else m for m, c in zip(mark_close, close, strict=True)]
            lists = self._lists = CandleLists(
                fields[0],  # type: ignore[arg-type]
                marks,
                fields[5],  # type: ignore[arg-type]
                fields[4],  # type: ignore[arg-type]
                close,
            )
        return lists

    def _field_lists(self) -> list[Sequence[object]]:
        """Candle's fields as Python lists, in its order (built once per batch)."""
        if self._fields is not None:
            return self._fields
        (open_time, open_, high, low, close, volume), marks = self._columns
        n = self.candles
        fields: list[Sequence[object]] = [
            self.ts.tolist(),
            [self.symbol] * n,
            open_time.tolist(),
            open_.tolist(),
            high.tolist(),
            low.tolist(),
            close.tolist(),
            volume.tolist(),
        ]
        if marks is not None:
            fields.extend(_nullable(x) for x in marks)
        self._fields = fields
        return fields

    # -- the batch as a sequence of events -----------------------------------------
    def events(self) -> list[MarketEvent]:
        events = self._events
        if events is None:
            events = self._events = self._build_events()
        return events

    def _build_events(self) -> list[MarketEvent]:
        candles: list[MarketEvent] = list(map(Candle, *self._field_lists()))
        if not self.inserts:
            return candles
        events: list[MarketEvent] = []
        prev = 0
        for at, event in self.inserts:
            events.extend(candles[prev:at])
            events.append(event)
            prev = at
        events.extend(candles[prev:])
        return events

    def __len__(self) -> int:
        return self.candles + len(self.inserts)

    @overload
    def __getitem__(self, index: int) -> MarketEvent: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[MarketEvent]: ...

    def __getitem__(self, index: int | slice) -> MarketEvent | Sequence[MarketEvent]:
        return self.events()[index]

    def __iter__(self) -> Iterator[MarketEvent]:
        return iter(self.events())


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
