"""Attaching the capture (SPEC 14, storage.capture) to an exchange-fed run without a
change to the loop: the feed is wrapped so every batch it yields (and the candles the
strategies are warmed up with) is enqueued before the orchestrator sees it, the
venue's `submit` is wrapped so each order's request is timed (sent just before,
acknowledged when the venue answered, unanswered when it got none; a venue that
measures its answered attempt says how long that took, so a retried request's round
trip leaves out the backoff before it), and the recorder
passes on every lifecycle update and fill it stores. All three only enqueue."""

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from perps_bot.config import Settings
from perps_bot.domain import Candle, MarketEvent, Order, RunMode
from perps_bot.feeds import Feed
from perps_bot.feeds.base import WarmUpSource
from perps_bot.orchestrator.preflight import Preflight
from perps_bot.venues import Venue
from perps_bot.venues.base import OrderRejected

if TYPE_CHECKING:  # the writer (pyarrow.parquet) loads only for a run that is captured
    from perps_bot.storage.capture import CaptureWriter

#: the modes whose market data comes from an exchange: what a replay can replay
CAPTURED_MODES = (RunMode.DRY_RUN, RunMode.LIVE)


def capture_folder(settings: Settings, run_id: str) -> Path:
    return Path(settings.run.data_dir) / "captures" / run_id


def open_capture(
    settings: Settings, pre: Preflight, run_id: str, params_json: str, *, resumed: bool = False
) -> "CaptureWriter | None":
    """The run's capture writer, or None when the run is not captured. `resumed`: the
    run goes on from a checkpoint, and its capture with it (the writer's `gap` says
    from when to when it was down)."""
    if pre.mode not in CAPTURED_MODES or not settings.run.capture:
        return None
    from perps_bot.storage.capture import CaptureWriter, instrument_config

    meta = {
        "run_id": run_id,
        "kind": str(pre.mode),
        "profile": settings.profile,
        "strategy": " + ".join(p.plan.strategy for p in pre.portfolios),
        "strategy_params": json.loads(params_json),
        # several portfolios (SPEC 10): a replay runs them all, as the config says
        "portfolios": [p.plan.id for p in pre.portfolios],
        "symbols": settings.symbols,
        "instruments": {s: instrument_config(i) for s, i in pre.instruments.items()},
        "config": settings.masked_dict(),
    }
    return CaptureWriter(capture_folder(settings, run_id), meta, resumed=resumed)


class CapturingFeed:
    """The run's feed, every batch enqueued for the capture before it is traded on."""

    def __init__(self, feed: Feed, writer: "CaptureWriter") -> None:
        self._feed = feed
        self._writer = writer
        self.simulated = feed.simulated
        self.candle_history = feed.candle_history
        self.mark_extremes = feed.mark_extremes

    async def batches(self) -> AsyncIterator[Sequence[MarketEvent]]:
        events = self._writer.events
        async for batch in self._feed.batches():
            events(batch)
            yield batch

    async def start(self) -> None:
        await self._feed.start()

    async def stop(self) -> None:
        await self._feed.stop()

    async def warmup_candles(
        self, bars: Mapping[str, int], timeframe_ms: int
    ) -> dict[str, list[Candle]]:
        """The feed's warm-up candles, recorded for the replay (none: nothing recorded)."""
        if not isinstance(self._feed, WarmUpSource):
            return {}
        candles = await self._feed.warmup_candles(bars, timeframe_ms)
        if candles:
            self._writer.warmup(candles)
        return candles

    def progress(self) -> tuple[int, int | None]:
        return self._feed.progress()

    def strategy_bar_ms(self, timeframe: str) -> int | None:
        return self._feed.strategy_bar_ms(timeframe)

    def __getattr__(self, name: str) -> Any:  # health and the rest: the feed's own
        return getattr(self._feed, name)


def time_submissions(venue: Venue, writer: "CaptureWriter") -> None:
    """Record each order's request around the venue's own `submit` (the instance keeps
    its class: the runner still recognises a live venue)."""
    submit = venue.submit

    async def timed(order: Order) -> Order:
        writer.order_sent(order)
        answered = False
        try:
            placed = await submit(order)
            answered = True
            return placed
        except OrderRejected as refused:
            answered = refused.answered  # the venue said no; or it never answered
            raise
        finally:
            # a request without an answer (retries used up, outcome unknown, breaker
            # open) is no round trip: its time is the retrying's, not the exchange's
            if answered:
                _acknowledged(writer, venue, order)
            else:
                writer.order_unanswered(order)

    setattr(venue, "submit", timed)  # noqa: B010 - an instance attribute, on purpose


@runtime_checkable
class TimedRequests(Protocol):
    """A venue that measures its answered requests (the live venue): a retried request's
    round trip is its answered attempt, not the client's backoff waits before it."""

    def round_trip_ms(self, client_id: str) -> int | None: ...


def _acknowledged(writer: "CaptureWriter", venue: Venue, order: Order) -> None:
    """The answer's row; from a venue that measures, with the answered attempt's round
    trip, or none when the order was answered by a look-up (no request's answer)."""
    if isinstance(venue, TimedRequests):
        writer.order_acknowledged(order, venue.round_trip_ms(order.client_id), measured=True)
    else:
        writer.order_acknowledged(order)
