"""Every request the live venue makes goes through here: retries of transient errors
with exponential backoff, the circuit breaker, the reconnect count, and error mapping.

Nothing sleeps or reads the clock by itself (injected `sleep`, the breaker's clock),
so tests drive outages without waiting in real time. A success after failures bumps
`reconnects`, which tells the orchestrator to reconcile.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import ccxt.async_support as ccxt_async

from perps_bot.config.models import ExchangeConfig
from perps_bot.domain.timeutil import parse_duration
from perps_bot.exchange.resilience import Backoff, CircuitBreaker
from perps_bot.exchange.runtime import take_retry_after
from perps_bot.exchange.startup import RATE_LIMITS
from perps_bot.venues.base import VenueFatal, VenueUnavailable
from perps_bot.venues.live.errors import FATAL_ERRORS, RETRYABLE_ERRORS, ErrorText

log = logging.getLogger("perps_bot.venues.live")

T = TypeVar("T")


class Skip(Exception):
    """Abandon a poll step. Transient: the exchange is failing, stop this poll; the next
    poll retries. Not transient: this one request was refused; go on with the others."""

    def __init__(self, *, transient: bool = True) -> None:
        super().__init__()
        self.transient = transient


class Requests:
    """Retrying, breaker-guarded calls to one exchange client."""

    def __init__(
        self,
        exchange: Any,
        cfg: ExchangeConfig,
        errors: ErrorText,
        clock: Callable[[], int],
        sleep: Callable[[float], Awaitable[None]],
        *,
        jitter: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.exchange = exchange
        self.cfg = cfg
        self.errors = errors
        self.sleep = sleep
        self._jitter = jitter
        self._seed = seed
        self._base_ms = parse_duration(cfg.backoff_base)
        self._max_ms = max(parse_duration(cfg.backoff_max), self._base_ms)
        self.breaker = CircuitBreaker(
            cfg.breaker_failures, parse_duration(cfg.breaker_cooldown), clock
        )
        self._failing = False
        self._clock = clock
        self._hold_until = 0  # no request before this (ms): the exchange's Retry-After
        #: Incremented each time a request succeeds after failed ones: reconcile then.
        self.reconnects = 0

    def backoff(self) -> Backoff:
        return Backoff(self._base_ms, self._max_ms, jitter=self._jitter, seed=self._seed)

    # -- Retry-After -----------------------------------------------------------------

    def hold_for(self, exc: BaseException, exchange: Any) -> int:
        """After a rate limit (429, or Binance's 418 ban): hold every request until the
        exchange's Retry-After has passed. Returns the hold in ms (0 if none was given)."""
        seconds = take_retry_after(exchange)
        if seconds is None:
            return 0
        hold_ms = int(seconds * 1000)
        self._hold_until = max(self._hold_until, self._clock() + hold_ms)
        log.warning(
            "live venue: the exchange asks to wait %.0f s (%s)", seconds, type(exc).__name__
        )
        return hold_ms

    def holding(self) -> bool:
        return self._clock() < self._hold_until

    async def wait_turn(self, delay_ms: int) -> None:
        """Sleep `delay_ms`, or until the exchange's Retry-After hold ends if that is later."""
        wait = max(delay_ms, self._hold_until - self._clock())
        if wait > 0:
            await self.sleep(wait / 1000.0)

    async def request(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run a read or a setting change, retrying transient errors with backoff.

        Raises VenueUnavailable when retries run out or the breaker is open, VenueFatal
        on authentication errors; other ccxt errors propagate for the caller to map.
        """
        backoff = self.backoff()
        last_error = "no attempt made"
        for attempt in range(self.cfg.max_retries + 1):
            if attempt > 0 or self.holding():
                await self.wait_turn(backoff.next_delay_ms() if attempt > 0 else 0)
            if not self.breaker.allow():
                raise VenueUnavailable(self.breaker_message(f"{what} not sent"))
            try:
                result = await call()
            except RATE_LIMITS as exc:
                last_error = self.failed(what, exc)
                self.hold_for(exc, self.exchange)
                continue
            except RETRYABLE_ERRORS as exc:
                last_error = self.failed(what, exc)
                continue
            except FATAL_ERRORS as exc:
                raise self.errors.fatal(exc) from exc
            except ccxt_async.BaseError:
                self.succeeded()
                raise
            self.succeeded()
            return result
        raise VenueUnavailable(
            f"{what} failed after {self.cfg.max_retries + 1} tries: {last_error}"
        )

    async def read(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """`request` for reads: an exchange error that is not a rejection of ours
        (malformed reply, unknown error) also becomes VenueUnavailable."""
        try:
            return await self.request(what, call)
        except ccxt_async.BaseError as exc:
            raise VenueUnavailable(f"{what} failed: {self.errors.one_line(exc)}") from exc

    async def once(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """One attempt, for polling. A transient failure raises Skip (the rest of this
        poll is abandoned); any other exchange error raises Skip(transient=False)."""
        if not self.breaker.allow() or self.holding():
            raise Skip()
        try:
            result = await call()
        except RETRYABLE_ERRORS as exc:
            self.failed(what, exc)
            if isinstance(exc, RATE_LIMITS):
                self.hold_for(exc, self.exchange)
            raise Skip() from exc
        except FATAL_ERRORS as exc:
            raise self.errors.fatal(exc) from exc
        except ccxt_async.BaseError as exc:
            self.succeeded()
            log.warning("live venue: %s: %s", what, self.errors.one_line(exc))
            raise Skip(transient=False) from exc
        self.succeeded()
        return result

    async def configure(self, what: str, call: Callable[[], Awaitable[Any]]) -> None:
        """A setting change (leverage, margin mode); "already set" answers are success."""
        try:
            await self.request(what, call)
        except (VenueUnavailable, VenueFatal):
            raise
        except ccxt_async.MarginModeAlreadySet:
            return
        except ccxt_async.BaseError as exc:
            text = str(exc).lower()
            if "no need to change" in text or "-4046" in text or "-4059" in text:
                return
            raise VenueFatal(f"live venue: cannot {what}: {self.errors.one_line(exc)}") from exc

    def failed(self, what: str, exc: BaseException) -> str:
        self.breaker.record_failure()
        self._failing = True
        line = self.errors.one_line(exc)
        state = " (circuit breaker open)" if self.breaker.is_open else ""
        log.warning("live venue: %s failed: %s%s", what, line, state)
        return line

    def succeeded(self) -> None:
        if self._failing:
            self._failing = False
            self.reconnects += 1
            log.info("live venue: exchange reachable again (reconnect #%d)", self.reconnects)
        self.breaker.record_success()

    def breaker_message(self, what: str) -> str:
        left = self.breaker.remaining_cooldown_ms()
        return f"circuit breaker open ({left} ms of cooldown left); {what}"
