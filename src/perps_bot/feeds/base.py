"""The market-data seam. A feed yields batches of events in timestamp order; batches
amortise the cost of async iteration when a backtest pushes millions of events."""

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from perps_bot.domain import MarketEvent, PerpsBotError


class FeedError(PerpsBotError):
    """Market data that cannot be used (bad file, malformed candle); one-line message."""


class Feed(Protocol):
    #: True when timestamps come from a simulated clock (dev-fast, backtest).
    simulated: bool

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def batches(self) -> AsyncIterator[Sequence[MarketEvent]]:
        """Events in non-decreasing `ts` order, in batches; ends when the data ends
        (historical) or when the feed is stopped (live, or at the run's end)."""
        ...

    def progress(self) -> tuple[int, int | None]:
        """(done, total) in feed-specific units for a progress bar; total None if open-ended."""
        ...

    def strategy_bar_ms(self, timeframe: str) -> int | None:
        """Candle feeds: the bar length the strategy sees when `timeframe` is longer than
        the candles (they are then aggregated), else None. Tick feeds: None (the
        orchestrator builds bars of `timeframe` from prices)."""
        ...
