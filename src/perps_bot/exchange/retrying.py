"""One exchange request retried through passing failures, for the requests that must
come back with an answer before anything else can go on (a download's page, the
warm-up's candles).

The exchange's errors split three ways, the same for every caller: a rate limit
(`RATE_LIMITS`) was refused and not executed, so it is asked again after the
exchange's Retry-After, never sooner than the backoff; a network error or a passing
failure (`TRANSIENT`) is asked again after the backoff; anything else is the exchange
refusing this request, and asking again cannot change that, so it propagates. After
`max_retries` failed tries in a row the caller gets `GaveUp` and says what it means
for its command. The live venue's requests are not retried here: they also honour the
circuit breaker and must look an order up before sending it again
(venues.live.requests, venues.live.sending).

Waiting goes through the caller's `pause` (milliseconds), so tests run on a simulated
clock and a stopping feed can cut a wait short.
"""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from perps_bot.exchange.backoff import Backoff
from perps_bot.exchange.runtime import one_line, take_retry_after
from perps_bot.exchange.startup import RATE_LIMITS, TRANSIENT

T = TypeVar("T")


class GaveUp(Exception):
    """Every one of `tries` tries failed in passing; `last` says how the last did."""

    def __init__(self, tries: int, last: str) -> None:
        super().__init__(f"{tries} failed tries in a row: {last}")
        self.tries, self.last = tries, last


async def retried(
    call: Callable[[], Awaitable[T]],
    *,
    exchange: Any,
    backoff: Backoff,
    max_retries: int,
    pause: Callable[[int], Awaitable[None]],
    on_retry: Callable[[str, int], None] | None = None,
    also_passing: tuple[type[Exception], ...] = (),
) -> T:
    """`call()`'s answer, asked up to `max_retries + 1` times. `also_passing` are the
    caller's own errors to treat like a network error (an answer it cannot use);
    `on_retry(why, wait_ms)` hears of each failure that will be tried again."""
    failures = 0
    while True:
        try:
            return await call()
        except (*TRANSIENT, *also_passing) as exc:
            wait_ms = backoff.next_delay_ms()
            if isinstance(exc, RATE_LIMITS):  # the exchange says when to come back
                told = take_retry_after(exchange)
                wait_ms = max(wait_ms, int((told or 0.0) * 1000))
                last = f"rate limited ({one_line(exc, 120)})"
            else:
                last = one_line(exc, 160)
        failures += 1
        if failures > max_retries:
            raise GaveUp(failures, last)
        if on_retry is not None:
            on_retry(last, wait_ms)
        await pause(wait_ms)
