"""Clocks. The simulated clock is advanced by event timestamps, so every timer
(funding, bar close, equity snapshots) fires in simulated time and nothing sleeps;
the wall clock is used for dev without --dev-fast, canary and prod."""

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> int: ...

    def advance(self, ts: int) -> None: ...


class SimulatedClock:
    __slots__ = ("_now",)

    def __init__(self, start_ms: int) -> None:
        self._now = start_ms

    def now(self) -> int:
        return self._now

    def advance(self, ts: int) -> None:
        if ts > self._now:
            self._now = ts


class WallClock:
    __slots__ = ()

    def now(self) -> int:
        return int(time.time() * 1000)

    def advance(self, ts: int) -> None:
        return None
