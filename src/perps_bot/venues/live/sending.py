"""Sending a live order exactly once (SPEC 9).

A request is sent once. When its outcome is unknown (timeout, 5xx, Binance's -1007
"execution status unknown", a reset connection, an unreadable reply), the order is
marked `unknown` and looked up by its client id, again and again with backoff, until
either the exchange shows it (it is adopted: accepted, maybe already filled) or the
request's receive window has certainly passed with the exchange still not knowing it.
Only then can the request never execute any more (the exchange refuses a request
that reaches its engine later than recvWindow after signing), and only then is the
order sent again, with the same client id. A blind resend is never made: Binance only
requires client ids to be unique among OPEN orders, so resending the id of a filled
market order would place a second one.

When the exchange cannot be asked (still failing, breaker open), the order stays
`unknown` and the venue keeps resolving it on every poll; meanwhile the orchestrator
sends nothing new for that symbol.

Rate limits (HTTP 429 and Binance's 418 ban) mean the request was refused, not
executed; the next attempt waits the exchange's `Retry-After` (never less than the
backoff), and so does every other request of the venue (`Requests.hold_until`).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import ccxt.async_support as ccxt_async

from perps_bot.exchange.runtime import CLOCK_MARGIN_MS
from perps_bot.exchange.startup import RATE_LIMITS
from perps_bot.venues.base import OrderRejected, VenueUnavailable
from perps_bot.venues.live.conditional import create_args, lookup_params
from perps_bot.venues.live.errors import (
    FATAL_ERRORS,
    NOT_AN_ANSWER,
    RETRYABLE_ERRORS,
    UnknownOutcome,
)
from perps_bot.venues.live.requests import Requests
from perps_bot.venues.live.tracking import Tracked, num, unusable

log = logging.getLogger("perps_bot.venues.live")

#: round trips kept until the capture takes them (a run without one takes none)
_KEPT_ROUND_TRIPS = 256


class StillUnknown(Exception):
    """The exchange could not be asked what became of the order; it stays `unknown`."""


class Sender:
    """Places orders on one exchange client; see the module docstring for the rules."""

    def __init__(
        self,
        exchange: Any,
        requests: Requests,
        clock: Callable[[], int],
        recv_window_ms: int,
        on_unknown: Callable[[Tracked, str], None],
    ) -> None:
        self.exchange = exchange
        self.requests = requests
        self.clock = clock
        self.window_ms = recv_window_ms + CLOCK_MARGIN_MS
        self.on_unknown = on_unknown
        #: client id -> ms from the answered attempt's signing to its answer (the
        #: capture's round trip: the retries' waits before it are the client's own)
        self.round_trips: dict[str, int] = {}

    async def place(self, tracked: Tracked) -> dict[str, Any]:
        """The exchange's reply for the order (placed once); raises OrderRejected,
        VenueFatal, VenueUnavailable (not placed) or StillUnknown."""
        requests = self.requests
        attempts = requests.cfg.max_retries + 1
        last = "no attempt made"
        for attempt in range(attempts):
            if attempt > 0 or requests.holding():
                await requests.wait_turn(requests.backoff().delay_ms(attempt))
            if not requests.breaker.allow():
                raise VenueUnavailable(requests.breaker_message("order not sent"))
            try:
                reply = await self._signed(tracked)
            except RATE_LIMITS as exc:  # refused, not executed: wait as told, send again
                last = requests.failed(f"submit {tracked.order.client_id}", exc)
                requests.hold_for(exc, self.exchange)
                continue
            except RETRYABLE_ERRORS as exc:
                last = requests.failed(f"submit {tracked.order.client_id}", exc)
                self.on_unknown(tracked, last)
                found = await self.resolve(tracked)
                if found is not None:
                    return found
                continue  # certainly never executed: sending again is safe now
            except FATAL_ERRORS as exc:
                raise requests.errors.fatal(exc) from exc
            except ccxt_async.BaseError as exc:
                requests.succeeded()
                self._answered(tracked)
                raise requests.errors.rejection(exc) from exc
            requests.succeeded()
            self._answered(tracked)
            return reply
        raise OrderRejected(None, f"not executed after {attempts} attempts: {last}", answered=False)

    def _answered(self, tracked: Tracked) -> None:
        """Keep the answered attempt's round trip (the last few, for the capture)."""
        self.round_trips[tracked.order.client_id] = max(self.clock() - tracked.sent_at, 0)
        if len(self.round_trips) > _KEPT_ROUND_TRIPS:
            del self.round_trips[next(iter(self.round_trips))]

    async def _signed(self, tracked: Tracked) -> dict[str, Any]:
        """`_create`, with `tracked.sent_at` the moment ccxt signed the request (its
        timestamp, from which the exchange counts the receive window), on the venue's
        clock: ccxt's rate limiter may hold a request before it signs it, and a window
        counted from before that wait closed early (a look-up then judged an order
        certainly not executed while the exchange could still execute it, and it was
        sent twice). ccxt records when it signs its last request; that moment less ccxt's
        clock before the call is the wait (never taken as less than nothing)."""
        before, ccxt_before = self.clock(), self._ccxt_ms()
        tracked.sent_at = before
        try:
            return await self._create(tracked)
        finally:
            signed = num(getattr(self.exchange, "lastRestRequestTimestamp", None))
            if signed is not None and ccxt_before is not None:
                tracked.sent_at = before + max(0, int(signed - ccxt_before))

    def _ccxt_ms(self) -> float | None:
        """ccxt's own clock (ms), which stamps and signs its requests."""
        milliseconds = getattr(self.exchange, "milliseconds", None)
        return num(milliseconds()) if callable(milliseconds) else None

    async def _create(self, tracked: Tracked) -> dict[str, Any]:
        order = tracked.order
        kind, params = create_args(order)
        params["newClientOrderId"] = tracked.exchange_client_id
        if order.reduce_only:
            params["reduceOnly"] = True
        reply = await self.exchange.create_order(
            tracked.ccxt_symbol, kind, order.side.value, order.size, order.price, params
        )
        if not isinstance(reply, dict) or not reply.get("id"):
            raise UnknownOutcome("create_order reply has no order id")
        wrong = unusable(reply, order.size)
        if wrong is not None:  # the order exists: its fills come from a readable answer
            raise UnknownOutcome(f"create_order reply says {wrong}")
        return reply

    async def resolve(self, tracked: Tracked) -> dict[str, Any] | None:
        """Look the order up until the exchange shows it (its reply) or its request can no
        longer execute (None). StillUnknown when the exchange cannot be asked."""
        requests = self.requests
        failures = 0
        for attempt in range(256):  # ends at the receive window's end or after failures
            look = await self.settle(tracked)
            if look.state is Look.FOUND:
                return look.reply
            if look.state is Look.GONE:
                return None
            if look.state is Look.UNANSWERED:
                failures += 1
                if failures > requests.cfg.max_retries:
                    break
            delay = requests.backoff().delay_ms(attempt)
            left = tracked.sent_at + self.window_ms - self.clock()
            if look.state is Look.PENDING and left > 0:
                delay = min(delay, left + 1)  # ask again right after the window closes
            await requests.wait_turn(delay)
        raise StillUnknown(
            f"order {tracked.order.client_id}: outcome unknown, the exchange cannot be asked"
        )

    async def settle(self, tracked: Tracked) -> "Looked":
        """One look at the order: found, certainly never executed (its window had passed
        when the exchange was asked and does not know it), pending (not known yet), or
        unanswered. A 'not found' tells of the moment it was asked, not of when it came
        back: the request may have reached the engine in between."""
        if not self.requests.breaker.allow():
            return Looked(Look.UNANSWERED)
        asked = self.clock()
        try:
            found = await self.lookup(tracked)
        except RETRYABLE_ERRORS as exc:
            self.requests.failed(f"look up {tracked.order.client_id}", exc)
            return Looked(Look.UNANSWERED)
        if found is not None:
            log.info("order %s found on the exchange; not sending it again",
                     tracked.order.client_id)  # fmt: skip
            return Looked(Look.FOUND, found)
        if asked >= tracked.sent_at + self.window_ms:
            return Looked(Look.GONE)
        return Looked(Look.PENDING)

    async def lookup(self, tracked: Tracked) -> dict[str, Any] | None:
        """The order with this client id on the exchange, or None if it does not exist."""
        try:
            found = await self.exchange.fetch_order(
                None, tracked.ccxt_symbol, lookup_params(tracked.order, tracked.exchange_client_id)
            )
        except ccxt_async.OrderNotFound:
            self.requests.succeeded()
            return None
        except NOT_AN_ANSWER:
            raise
        except ccxt_async.BaseError as exc:
            # Any other answer does not prove the order is absent: stay unsure.
            line = self.requests.errors.one_line(exc)
            raise UnknownOutcome(f"order lookup failed: {line}") from exc
        if not isinstance(found, dict) or not found.get("id"):
            raise UnknownOutcome("order lookup reply has no order id")
        wrong = unusable(found, tracked.order.size)
        if wrong is not None:
            raise UnknownOutcome(f"order lookup reply says {wrong}")
        self.requests.succeeded()
        return found


class Look(Enum):
    FOUND = "found"
    GONE = "gone"  # its receive window passed and the exchange does not know it
    PENDING = "pending"  # not known yet, the window is still open
    UNANSWERED = "unanswered"  # the lookup itself failed


@dataclass(frozen=True, slots=True)
class Looked:
    state: Look
    reply: dict[str, Any] | None = None
