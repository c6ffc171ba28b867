"""QuoteColumns: one batch of the mock exchange's ticks, kept as its columns.

Why columns and not a list of Quote objects: in a paper run most ticks change nothing
but prices, and the orchestrator walks such stretches column-wise
(orchestrator.quiet_quotes), building a Quote only for a tick some stage has to see
one by one. Anything else that reads the batch (the plain loop, a resumed feed's
slice, the realtime pacing) sees an ordinary sequence of events: iterating or slicing
builds them all, in the feed's order, once; one index builds one event.

The ticks of all symbols share their times: tick t is `width` quotes, one per symbol
in `symbols` order (event t * width + offset). Other events of the batch (funding
settlements) keep their places: `inserts` holds (quote index they come before,
event), in order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, overload

from perps_bot.domain import MarketEvent, Quote


class QuoteLists(NamedTuple):
    """One symbol's columns, as Python lists (what a per-tick loop indexes fastest)."""

    last: list[float]
    bid: list[float]
    ask: list[float]
    mark: list[float]


class QuoteColumns(Sequence[MarketEvent]):
    __slots__ = ("_events", "columns", "inserts", "symbols", "ts", "width")

    def __init__(
        self,
        ts: list[int],
        symbols: Sequence[str],
        columns: Sequence[QuoteLists],
        inserts: list[tuple[int, MarketEvent]],
    ) -> None:
        self.ts = ts
        self.symbols = tuple(symbols)
        self.columns = tuple(columns)
        self.width = len(self.symbols)
        self.inserts = inserts
        self._events: list[MarketEvent] | None = None

    @property
    def quotes(self) -> int:
        return len(self.ts) * self.width

    def quote(self, i: int) -> Quote:
        """The i-th quote (0-based among the quotes, not counting inserts)."""
        tick, offset = divmod(i, self.width)
        c = self.columns[offset]
        return Quote(
            self.ts[tick], self.symbols[offset], c.last[tick], c.bid[tick], c.ask[tick],
            c.mark[tick],
        )  # fmt: skip

    # -- the batch as a sequence of events -----------------------------------------
    def events(self) -> list[MarketEvent]:
        events = self._events
        if events is None:
            events = self._events = self._build_events()
        return events

    def _build_events(self) -> list[MarketEvent]:
        ts, width = self.ts, self.width
        quotes: list[MarketEvent] = []
        for offset, (symbol, c) in enumerate(zip(self.symbols, self.columns, strict=True)):
            of_symbol: list[MarketEvent] = list(
                map(Quote, ts, [symbol] * len(ts), c.last, c.bid, c.ask, c.mark)
            )
            if offset == 0:
                quotes = of_symbol * width
            quotes[offset::width] = of_symbol
        if not self.inserts:
            return quotes
        events: list[MarketEvent] = []
        prev = 0
        for at, event in self.inserts:
            events.extend(quotes[prev:at])
            events.append(event)
            prev = at
        events.extend(quotes[prev:])
        return events

    def __len__(self) -> int:
        return self.quotes + len(self.inserts)

    @overload
    def __getitem__(self, index: int) -> MarketEvent: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[MarketEvent]: ...

    def __getitem__(self, index: int | slice) -> MarketEvent | Sequence[MarketEvent]:
        if isinstance(index, slice) or self._events is not None:
            return self.events()[index]
        return self._one(index)

    def _one(self, index: int) -> MarketEvent:
        """Event `index` without building the others (the feed reads the last one)."""
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
        return self.quote(index - before)

    def __iter__(self) -> Iterator[MarketEvent]:
        return iter(self.events())
