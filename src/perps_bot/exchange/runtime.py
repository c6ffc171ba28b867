"""Small helpers every part of the bot that talks to a real exchange shares (the
exchange feed and the live venue): the wall clock, one-line error text, and closing a
ccxt client without letting cleanup hide why a run ended."""

import logging
import time
from typing import Any

log = logging.getLogger("perps_bot.exchange")

#: clocks of the bot and the exchange may differ by this much (ms) on top of a request's
#: receive window: only after both can a request certainly no longer execute
CLOCK_MARGIN_MS = 1_000


def wall_clock_ms() -> int:
    """Milliseconds since the epoch from the wall clock (the default live clock)."""
    return int(time.time() * 1000)


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as a single bounded line: class name and message."""
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def close_quietly(exchange: Any) -> None:
    """Close a ccxt client; closing is cleanup, so its errors are logged, not raised."""
    close = getattr(exchange, "close", None)
    if close is None:
        return
    try:
        await close()
    except Exception as exc:  # cleanup must not mask the reason the run ended
        log.warning("closing the exchange client failed: %s", one_line(exc))


def retry_after_s(headers: Any) -> float | None:
    """The `Retry-After` of an exchange answer (seconds; the HTTP-date form is not used by
    Binance), from ccxt's `last_response_headers`; None when absent or unreadable."""
    if not hasattr(headers, "items"):
        return None
    for name, value in headers.items():
        if str(name).lower() == "retry-after":
            try:
                seconds = float(value)
            except (TypeError, ValueError):
                return None
            return seconds if 0 <= seconds < 86_400 else None
    return None


#: where `create_exchange` keeps the Retry-After (s) of the client's last rate-limited
#: answer: ccxt's `last_response_headers` belong to whichever concurrent request
#: finished last, so they cannot tell which answer asked us to wait
RETRY_AFTER_ATTR = "perps_retry_after_s"


def take_retry_after(exchange: Any) -> float | None:
    """The Retry-After (s) the exchange last asked for, once (None if it asked nothing)."""
    told = getattr(exchange, RETRY_AFTER_ATTR, None)
    if told is not None:
        setattr(exchange, RETRY_AFTER_ATTR, None)
    return told if isinstance(told, float | int) else None
