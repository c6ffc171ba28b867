"""The market-data seam. A feed yields batches of events in timestamp order; batches
amortise the cost of async iteration when a backtest pushes millions of events."""

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from perps_bot.domain import Candle, MarketEvent, PerpsBotError


class FeedError(PerpsBotError):
    """Market data that cannot be used (bad file, malformed candle); one-line message."""


async def no_batches() -> AsyncIterator[Sequence[MarketEvent]]:
    """The batches of a run stopped before it started: none. Here, not in the compiled
    engine: mypyc compiles an async generator as a plain one, which `async for`
    refuses (tests/architecture/test_compiled_awaits.py)."""
    return
    yield


class Feed(Protocol):
    #: True when timestamps come from a simulated clock (dev-fast, backtest).
    simulated: bool
    #: True when the events are candles read from files (a backtest): the run starts at
    #: the first candle's open, and a settlement inside that candle comes before any
    #: event (orchestrator.long_candles).
    candle_history: bool
    #: True when its candles may carry a mark series' low and high (a backtest with a
    #: mark file): a candle the venue has orders for is then walked point by point, the
    #: ledger checking each extreme as the path reaches it (orchestrator.long_candles).
    mark_extremes: bool

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


@runtime_checkable
class MatchingInput(Protocol):
    """A feed whose events a paper venue should match against in another form than the
    strategies see them: a live run's capture, whose books hold the run's own resting
    orders (feeds.replay_own)."""

    def matching_view(self) -> Callable[[MarketEvent], MarketEvent] | None:
        """What the venue matches against instead of each event (None: the events)."""
        ...


@runtime_checkable
class WarmUpSource(Protocol):
    """A feed that can tell the closed candles before its first event (an exchange's
    klines, or a capture's record of those its run was warmed up with): the strategies'
    warm-up (orchestrator.warmup). Feeds of history and the random walk have none."""

    async def warmup_candles(
        self, bars: Mapping[str, int], timeframe_ms: int
    ) -> dict[str, list[Candle]]:
        """Up to `bars[symbol]` of the latest closed candles of `timeframe_ms` per symbol,
        oldest first; a symbol whose candles cannot be had is left out (said in one log
        line by the feed). Never raises for an exchange that refuses or fails."""
        ...
