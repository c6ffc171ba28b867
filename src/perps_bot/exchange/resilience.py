"""Backoff and circuit breaker for talking to a real exchange.

Why small, exchange-agnostic objects: the live venue must be testable without
waiting in real time, so nothing here sleeps or reads the wall clock by itself.
`Backoff` (exchange.backoff) only computes delays, and `CircuitBreaker` reads time
through an injected `clock` (int ms).
"""

from collections.abc import Callable
from enum import StrEnum

from perps_bot.exchange.backoff import Backoff

__all__ = ["Backoff", "BreakerState", "CircuitBreaker"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Stops calling a failing service for a while, then probes it.

    closed: calls pass; `failures` consecutive failures open it.
    open: calls are refused until `cooldown_ms` has passed since it opened; then
    the next `allow()` moves it to half-open and lets that one call through.
    half-open: a success closes it, a failure re-opens it for another cooldown.
    """

    def __init__(self, failures: int, cooldown_ms: int, clock: Callable[[], int]) -> None:
        if failures < 1:
            raise ValueError(f"circuit breaker needs failures >= 1 (got {failures})")
        if cooldown_ms < 0:
            raise ValueError(f"circuit breaker cooldown must be >= 0 (got {cooldown_ms})")
        self.failures = failures
        self.cooldown_ms = cooldown_ms
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._opened_at = 0
        #: How many times the breaker has opened (for logs and metrics).
        self.trips = 0

    @property
    def state(self) -> BreakerState:
        """The state now; an open breaker whose cooldown has passed reports half-open."""
        if self._state is BreakerState.OPEN and self._cooldown_over():
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def is_open(self) -> bool:
        """True while calls are refused (open and still cooling down)."""
        return self._state is BreakerState.OPEN and not self._cooldown_over()

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive

    def allow(self) -> bool:
        """May a call go out now? Moves open -> half-open once the cooldown is over."""
        if self._state is BreakerState.OPEN:
            if not self._cooldown_over():
                return False
            self._state = BreakerState.HALF_OPEN
        return True

    def record_success(self) -> None:
        self._consecutive = 0
        self._state = BreakerState.CLOSED

    def record_failure(self) -> None:
        self._consecutive += 1
        if self._state is BreakerState.HALF_OPEN or (
            self._state is BreakerState.CLOSED and self._consecutive >= self.failures
        ):
            self._trip()

    def remaining_cooldown_ms(self) -> int:
        if self._state is not BreakerState.OPEN:
            return 0
        return max(self._opened_at + self.cooldown_ms - self._clock(), 0)

    def _trip(self) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self.trips += 1

    def _cooldown_over(self) -> bool:
        return self._clock() - self._opened_at >= self.cooldown_ms
