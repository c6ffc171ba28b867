"""How a run stops (SPEC 1, 9): at its end (the duration), or interrupted before it
(Ctrl-C, SIGTERM, a server that stops, the session API), and closing the feed and the
venue once, with the fills a polled venue still held booked first, then the run's
last equity rows.

A mixin of `Orchestrator` (orchestrator.engine); the attributes below are the engine's,
declared here for the type checker.
"""

import asyncio
import contextlib

from perps_bot.feeds import Feed
from perps_bot.orchestrator.venue_calls import StopRun, VenueCalls


class RunStopping(VenueCalls):
    feed: Feed
    stop_requested: bool
    stop_reason: str
    interrupted: bool
    last_ts: int | None
    _end_ms: int | None
    _closed: bool
    _feed_stopping: "asyncio.Task[None] | None"

    def _reach_end(self) -> None:
        self.stop_requested = True
        self.stop_reason = "duration reached"
        # the run covered [start, end): it ends at end, not at the last tick
        self.last_ts = self._end_ms

    async def close(self) -> None:
        """Stop feed and venue once (also when the run failed before its loop started);
        record what the venue closed on stopping (paper: "end of run")."""
        if self._closed:
            return
        self._closed = True
        if self._feed_stopping is not None:
            await self._feed_stopping
        else:
            await self.feed.stop()
        if self.venue.needs_polling:
            await self._last_collect()
        await self.venue.stop()
        self._record_updates()

    async def _last_collect(self) -> None:
        """The fills a polled venue holds for its next poll (those the exchange's replies
        told of), booked before it stops: their orders are stored filled either way."""
        with contextlib.suppress(StopRun):  # refused for good (logged): what it held
            await self._collect(self.clock.now())  # was handed out first

    def request_stop(self, reason: str, *, interrupt: bool = False) -> None:
        """End the run after the current batch: at its end (the duration; the run is
        `completed`) or, with `interrupt`, before it (Ctrl-C, SIGTERM, a server that
        stops, the session API: the run is `interrupted`, resumable from its last
        checkpoint). A feed that is waiting for data (an exchange that does not answer)
        is stopped too, so the loop notices at once."""
        self.stop_requested = True
        self.stop_reason = reason
        self.interrupted = self.interrupted or interrupt
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not inside the run's loop: the loop checks the flag
            return
        if self._feed_stopping is None:
            self._feed_stopping = loop.create_task(self.feed.stop())

    def _last_rows(self) -> None:
        """Each portfolio's last equity row and chart sample, stored with its rows."""
        for p in self.portfolios:
            if self.last_ts is not None:
                p.rec.equity(self.last_ts, log_line=True)
                p.plot.sample(self.last_ts)
            p.plot.write(p.rec.store, p.rec.run_id)
            p.rec.flush()
        if self._account_rec is not None and self.last_ts is not None:
            self._account_rec.equity(self.last_ts, log_line=True)
        self.rec.flush()
