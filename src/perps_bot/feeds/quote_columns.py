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

from collections.abc import Sequence
from typing import NamedTuple

from perps_bot.domain import MarketEvent, Quote
from perps_bot.feeds.columns import EventColumns


class QuoteLists(NamedTuple):
    """One symbol's columns, as Python lists (what a per-tick loop indexes fastest)."""

    last: list[float]
    bid: list[float]
    ask: list[float]
    mark: list[float]


class QuoteColumns(EventColumns):
    """One chunk of the mock exchange's ticks: `ts` per tick, `columns` per symbol (in
    `symbols` order), funding settlements in `inserts` (see the module's docstring)."""

    __slots__ = ("columns", "symbols", "ts", "width")

    def __init__(
        self,
        ts: list[int],
        symbols: Sequence[str],
        columns: Sequence[QuoteLists],
        inserts: list[tuple[int, MarketEvent]],
    ) -> None:
        super().__init__(inserts)
        self.ts = ts
        self.symbols = tuple(symbols)
        self.columns = tuple(columns)
        self.width = len(self.symbols)

    @property
    def quotes(self) -> int:
        """How many quotes the batch holds (ticks times symbols; inserts not counted)."""
        return len(self.ts) * self.width

    def quote(self, i: int) -> Quote:
        """The i-th quote (0-based among the quotes, not counting inserts)."""
        tick, offset = divmod(i, self.width)
        c = self.columns[offset]
        return Quote(
            self.ts[tick], self.symbols[offset], c.last[tick], c.bid[tick], c.ask[tick],
            c.mark[tick],
        )  # fmt: skip

    # -- EventColumns ---------------------------------------------------------------
    def own_count(self) -> int:
        return self.quotes

    def own_event(self, i: int) -> MarketEvent:
        return self.quote(i)

    def _own_events(self) -> list[MarketEvent]:
        ts, width = self.ts, self.width
        quotes: list[MarketEvent] = []
        for offset, (symbol, c) in enumerate(zip(self.symbols, self.columns, strict=True)):
            of_symbol: list[MarketEvent] = list(
                map(Quote, ts, [symbol] * len(ts), c.last, c.bid, c.ask, c.mark)
            )
            if offset == 0:
                quotes = of_symbol * width  # the slots, filled symbol by symbol
            quotes[offset::width] = of_symbol
        return quotes
