"""Reaching the exchange at start: load its markets, retrying for at most
`exchange.startup_timeout`, then give up with one line (SPEC 8 newcomer rule: a dry run
that cannot reach the exchange must not retry for ever in silence)."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import ccxt.async_support as ccxt_async

from perps_bot.config.models import ExchangeConfig
from perps_bot.domain import PerpsBotError
from perps_bot.domain.timeutil import parse_duration
from perps_bot.exchange.backoff import backoff_of
from perps_bot.exchange.runtime import one_line

log = logging.getLogger("perps_bot.exchange")

#: The request may or may not have reached the exchange, or it failed in passing.
TRANSIENT = (ccxt_async.NetworkError, ccxt_async.OperationFailed)
#: The exchange refused for the request rate (HTTP 429, the 418 ban): not executed,
#: wait as told (exchange.runtime.take_retry_after).
RATE_LIMITS = (ccxt_async.DDoSProtection, ccxt_async.RateLimitExceeded)


class ExchangeUnreachable(PerpsBotError):
    """The exchange did not answer within exchange.startup_timeout."""


def where(cfg: ExchangeConfig) -> str:
    """How messages name the exchange: its ccxt id and the host it is reached at."""
    return f"{cfg.name} at {cfg.base_url}" if cfg.base_url else cfg.name


async def load_markets_within(
    client: Any,
    cfg: ExchangeConfig,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """`client.load_markets()`, retried with backoff until `cfg.startup_timeout` passes.

    Raises ExchangeUnreachable (one line: the exchange, the timeout, the last error)
    when it never answers, and PerpsBotError when it answers with an error that
    retrying cannot fix.
    """
    timeout_s = parse_duration(cfg.startup_timeout) / 1000.0
    deadline = monotonic() + timeout_s
    backoff = backoff_of(cfg)
    attempt = 0
    last = "no attempt"
    while True:
        attempt += 1
        left = deadline - monotonic()
        try:
            markets: dict[str, Any] = await asyncio.wait_for(
                client.load_markets(), max(left, 0.001)
            )
            return markets
        except (TimeoutError, *TRANSIENT) as exc:
            last = "no answer" if isinstance(exc, TimeoutError) else one_line(exc, 160)
            log.warning(
                "loading markets from %s failed (attempt %d): %s", where(cfg), attempt, last
            )
        except ccxt_async.BaseError as exc:
            raise PerpsBotError(
                f"the exchange ({where(cfg)}) refused to list its markets: {one_line(exc, 160)}"
            ) from exc
        delay = backoff.next_delay_ms() / 1000.0
        if monotonic() + delay >= deadline:
            raise ExchangeUnreachable(
                f"cannot reach the exchange ({where(cfg)}) within exchange.startup_timeout"
                f" {cfg.startup_timeout}: {last}; check exchange.base_url and the network"
            )
        await sleep(delay)
