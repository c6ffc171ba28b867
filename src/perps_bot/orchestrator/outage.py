"""An exchange outage of a run on the wall clock, followed from outside the loop.

When every call fails, the loop stands still (the feed hands out no batch, so the
venue is not called either) and each failed call is a WARNING; /health says 503. A
trader wants one word when trading is impaired and one when it is over, not one per
failed call. `follow_outage` looks every second at what /health judges (server.views:
market data older than `risk.stale_after`, the venue's circuit breaker open) and
journals a `venue` line when the run becomes impaired and when it is not any more;
the alerts send them (monitoring.alerts), the log has them. A breaker is over only at
the exchange's first answer after it opened (the venue's `reconnects` grows): its
cooldown ending without an answer is the same outage.
"""

import asyncio
import logging
from dataclasses import dataclass

from perps_bot.domain import parse_duration
from perps_bot.monitoring import Journal
from perps_bot.orchestrator.engine import Orchestrator

log = logging.getLogger("perps_bot.orchestrator")
#: how often (s) the run's state is looked at
EVERY_S = 1.0


@dataclass(slots=True)
class _Outage:
    since: int  # ms
    reconnects: int  # the venue's then
    breaker: bool = False  # its circuit breaker opened in it

    def over(self, orchestrator: Orchestrator, why: str | None) -> bool:
        """Nothing impairs the run now, and the exchange answered since its breaker
        opened (if it did)."""
        self.breaker = self.breaker or orchestrator.venue.circuit_open
        return why is None and (not self.breaker or orchestrator.venue.reconnects
                                != self.reconnects)  # fmt: skip


def _impaired(orchestrator: Orchestrator, now: int, stale_ms: int) -> str | None:
    """Why the run cannot trade now (None: it can)."""
    if orchestrator.venue.circuit_open:
        return "its calls keep failing (circuit breaker open)"
    age = now - (orchestrator.last_ts or now)
    if age > stale_ms:
        return f"no market data for {age / 1e3:.0f} s"
    return None


async def follow_outage(orchestrator: Orchestrator, journal: Journal, stale_after: str) -> None:
    """Journal the begin and end of each outage (see the module doc) until cancelled.
    The market data's age is judged once this run had some (a start's warm-up, or the
    time a resumed run was down, is no outage)."""
    stale_ms = parse_duration(stale_after)
    outage: _Outage | None = None
    before = orchestrator.last_ts
    while True:
        await asyncio.sleep(EVERY_S)
        now = orchestrator.clock.now()
        why = _impaired(orchestrator, now, stale_ms if orchestrator.last_ts != before else 1 << 62)
        if outage is None and why is not None:
            outage = _Outage(now, orchestrator.venue.reconnects)
            log.warning("exchange not answering: %s; no order goes out until it answers"
                        " again", why)  # fmt: skip
            journal.write("venue", now, {"state": "unavailable", "detail": why})
        elif outage is not None and outage.over(orchestrator, why):
            down_ms = now - outage.since
            outage = None
            log.warning("exchange answering again after %.0f s", down_ms / 1e3)
            journal.write("venue", now, {"state": "available", "down_ms": down_ms})
