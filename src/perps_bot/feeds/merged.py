"""One feed over several symbols' candles, merged in time order (multi-symbol backtests).

Each symbol keeps its own CandleFeed (its funding schedule, its marks); this feed
interleaves their events by timestamp. Events at the same time keep the symbols'
order, and within a symbol the CandleFeed's own order (a funding settlement after the
candle closing at that time). Batches are merged up to the earliest last timestamp
among the symbols' current batches, so no event is emitted before an earlier one of
another symbol could still arrive.
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator, Sequence
from operator import attrgetter

from perps_bot.domain import MarketEvent, iso_utc, short
from perps_bot.feeds.base import FeedError
from perps_bot.feeds.historical import CandleFeed

_TS = attrgetter("ts")


class _Stream:
    """A CandleFeed's batches read ahead one batch at a time."""

    def __init__(self, feed: CandleFeed) -> None:
        self._batches = feed.batches().__aiter__()
        self.events: Sequence[MarketEvent] = ()
        self.pos = 0

    async def refill(self) -> None:
        while self.pos >= len(self.events):
            try:
                self.events = await self._batches.__anext__()
            except StopAsyncIteration:
                self.events, self.pos = (), 0
                return
            self.pos = 0

    @property
    def live(self) -> bool:
        return self.pos < len(self.events)

    def take_until(self, horizon: int) -> Sequence[MarketEvent]:
        events, start = self.events, self.pos
        end = start
        while end < len(events) and events[end].ts <= horizon:
            end += 1
        self.pos = end
        return events[start:end]


class MergedCandleFeed:
    """A historical, simulated Feed over several CandleFeeds of the same candle interval."""

    simulated = True
    candle_history = True

    def __init__(self, feeds: Sequence[CandleFeed]) -> None:
        if not feeds:
            raise FeedError("no symbols to replay")
        symbols = [f.symbol for f in feeds]
        if len(set(symbols)) != len(symbols):
            raise FeedError(f"a symbol is given twice: {', '.join(symbols)}")
        intervals = {f.interval_ms for f in feeds}
        if len(intervals) != 1:
            raise FeedError(f"the symbols' candles have different intervals: {', '.join(symbols)}")
        self.feeds = list(feeds)
        self.symbols = symbols
        self.mark_extremes = any(f.mark_extremes for f in feeds)
        self.interval_ms = feeds[0].interval_ms

    @property
    def overlap(self) -> tuple[int, int] | None:
        """(start, end) of the time every symbol has candles for, None when there is none."""
        start = max(f.start_ts for f in self.feeds)
        end = min(f.end_ts for f in self.feeds)
        return (start, end) if start < end else None

    def require_overlap(self) -> None:
        """FeedError when no time has candles of every symbol: a backtest of such files
        spans the union with a hole, and its report's days count the hole."""
        if self.overlap is None:
            spans = ", ".join(
                f"{f.symbol} {iso_utc(f.start_ts)} -> {iso_utc(f.end_ts)}" for f in self.feeds
            )
            raise FeedError(
                f"the symbols' candles do not overlap in time ({short(spans, 200)}):"
                " give files covering a common period"
            )

    @property
    def total(self) -> int:
        return sum(f.total for f in self.feeds)

    @property
    def start_ts(self) -> int:
        return min(f.start_ts for f in self.feeds)

    @property
    def end_ts(self) -> int:
        return max(f.end_ts for f in self.feeds)

    def strategy_bar_ms(self, timeframe: str) -> int | None:
        return self.feeds[0].strategy_bar_ms(timeframe)

    async def start(self) -> None:
        for feed in self.feeds:
            await feed.start()

    async def stop(self) -> None:
        for feed in self.feeds:
            await feed.stop()

    def progress(self) -> tuple[int, int | None]:
        return sum(f.progress()[0] for f in self.feeds), self.total

    async def batches(self) -> AsyncIterator[Sequence[MarketEvent]]:
        streams = [_Stream(feed) for feed in self.feeds]
        for stream in streams:
            await stream.refill()
        while True:
            live = [s for s in streams if s.live]
            if not live:
                return
            horizon = min(s.events[-1].ts for s in live)
            parts = [s.take_until(horizon) for s in live]
            yield list(heapq.merge(*parts, key=_TS))
            for stream in live:
                await stream.refill()
