"""How the live venue reads the exchange's errors, and keeps keys out of every log line.

Errors are classified by ccxt class (SPEC 4): network and rate-limit errors are
transient (retry with backoff, idempotently), authentication errors are fatal (stop
the bot), other exchange errors are refusals of this one request. Binance error
codes are also read from the message, because ccxt picks its futures error table by
URL and a proxied base URL can hide the class.

ccxt logs every request at DEBUG with its headers, and Binance sends the API key in
the X-MBX-APIKEY header: the venue points its client's `logger` at `CCXT_LOG`, whose
filter blanks API keys, secrets and request signatures.
"""

import logging
import re
from collections.abc import Iterable

import ccxt.async_support as ccxt_async

from perps_bot.domain import DenialReason
from perps_bot.exchange.startup import TRANSIENT
from perps_bot.venues.base import OrderRejected, VenueFatal

_CODE_IN_MESSAGE = re.compile(r'"code"\s*:\s*(-?\d+)')
_SIGNATURE = re.compile(r"(signature=)[0-9a-zA-Z]+")


class UnknownOutcome(Exception):
    """create_order (or a lookup) returned, but not a usable answer: treat like a timeout."""


#: The credentials are wrong or lack permissions: nothing will work.
FATAL_ERRORS: tuple[type[BaseException], ...] = (ccxt_async.AuthenticationError,)
#: Failures after which an order may or may not exist: look it up before resending.
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT, UnknownOutcome)
#: Errors that say nothing about an order's existence (used by the lookup).
NOT_AN_ANSWER: tuple[type[BaseException], ...] = (*TRANSIENT, *FATAL_ERRORS)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret and request signature replaced by ***."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return _SIGNATURE.sub(r"\1***", text)


class _RedactSecrets(logging.Filter):
    """Blanks API keys, secrets and request signatures out of ccxt's log records."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        redacted = redact(text, self.secrets)
        if redacted != text:
            record.msg, record.args = redacted, None
        return True


REDACTOR = _RedactSecrets()
#: The logger the venue's ccxt client writes to (its request/response DEBUG lines).
CCXT_LOG = logging.getLogger("perps_bot.venues.live.ccxt")
CCXT_LOG.addFilter(REDACTOR)


def binance_code(message: str) -> int | None:
    match = _CODE_IN_MESSAGE.search(message)
    return int(match.group(1)) if match else None


class ErrorText:
    """One-line, redacted descriptions of exceptions, and their mapping to outcomes."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = [s for s in secrets if s]
        REDACTOR.secrets.update(self.secrets)

    def one_line(self, exc: BaseException, limit: int = 300) -> str:
        text = redact(" ".join(str(exc).split()), self.secrets)
        if len(text) > limit:
            text = text[: limit - 3] + "..."
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

    def rejection(self, exc: BaseException) -> OrderRejected:
        """Map an exchange refusal onto a risk-style denial."""
        line = self.one_line(exc)
        code = binance_code(str(exc))
        text = str(exc).lower()
        if isinstance(exc, ccxt_async.InsufficientFunds) or code == -2019:
            return OrderRejected(DenialReason.INSUFFICIENT_MARGIN, line)
        if (isinstance(exc, ccxt_async.InvalidOrder) and "reduce" in text) or code == -2022:
            return OrderRejected(DenialReason.REDUCE_ONLY_VIOLATION, line)
        return OrderRejected(None, line)

    def fatal(self, exc: BaseException) -> VenueFatal:
        return VenueFatal(
            "exchange refused the API credentials or permissions "
            f"({self.one_line(exc)}); check PERPS_BOT__EXCHANGE__API_KEY / _API_SECRET"
        )
