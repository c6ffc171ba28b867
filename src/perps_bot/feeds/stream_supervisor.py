"""The watch loops of the streaming exchange feed (feeds.exchange_stream): one ccxt.pro
watch per (symbol, stream), kept alive forever with its own backoff, and whether each
stream is up and when it last delivered, which is what the feed's poll cycle asks
before it falls back to REST. The supervisor never raises into the feed: a failure is
recorded, the feed is woken (`changed`) on the transition, and the watch is retried.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from perps_bot.exchange.backoff import Backoff
from perps_bot.exchange.runtime import one_line

log = logging.getLogger("perps_bot.feeds.exchange_stream")  # the streaming feed's logger

MARK = "mark"
TRADES = "trades"
#: timeouts in a row after which a retried watch that still waits is cancelled for a new one
GIVE_UP_AFTER = 3

#: (symbol, stream)
StreamKey = tuple[str, str]


class UnusableStreamData(Exception):
    """A stream delivered something the feed cannot turn into an event."""


@dataclass(slots=True)
class StreamState:
    up: bool = False  # the last watch delivered usable data
    failures: int = 0  # consecutive failed watches
    last_message: int | None = None  # local ms of the last usable data


class StreamSupervisor:
    """Keeps one ccxt.pro watch loop per stream alive and records whether it is up.

    `on_data(key, data)` turns a watch result into events; it returns False when the
    data is unusable, which counts as a failure. Failures back off and retry forever;
    the supervisor never raises into the feed. A watch retried after a failure that
    delivers nothing within `retry_timeout_s` counts as failed and is retried: a
    reconnection that hangs (a subscription lost on a socket the exchange accepted)
    would otherwise leave its stream down for good, and the feed on REST for good. The
    watch given up on is kept waiting and waited on again at the next retries: what it
    delivers meanwhile (ccxt.pro resolves the pending watch of a stream, and drops a
    message no watch waits for, such as the value sent on subscribing) is taken, not
    lost. An up stream's watch has no such bound: a diff stream is silent in a quiet
    market.
    """

    def __init__(
        self,
        watches: Mapping[StreamKey, Callable[[], Awaitable[Any]]],
        *,
        on_data: Callable[[StreamKey, Any], bool],
        backoff_for: Callable[[StreamKey], Backoff],
        clock: Callable[[], int],
        sleep: Callable[[float], Awaitable[None]],
        retry_timeout_s: float | None = None,
    ) -> None:
        self._watches = dict(watches)
        self._retry_timeout_s = retry_timeout_s
        self._on_data = on_data
        self._backoff_for = backoff_for
        self._clock = clock
        self._sleep = sleep
        self.states = {key: StreamState() for key in self._watches}
        #: Set when a stream goes down (the poll loop wakes on it).
        self.changed = asyncio.Event()
        self._went_down: dict[StreamKey, str] = {}
        self._came_up: list[StreamKey] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.errors = 0
        #: Per stream, a retried watch that timed out and still waits, and how many
        #: times it timed out (see _retried).
        self._given_up: dict[StreamKey, tuple[asyncio.Future[Any], int]] = {}

    @property
    def running(self) -> bool:
        return bool(self.tasks)

    def start(self) -> None:
        if not self.tasks:
            self.tasks = [
                asyncio.create_task(self._watch_forever(key, watch), name=f"watch {key}")
                for key, watch in self._watches.items()
            ]

    async def stop(self) -> None:
        """Cancel every watch loop and wait until each has ended."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await _cancelled(*(pending for pending, _ in self._given_up.values()))
        self._given_up.clear()

    def fresh(self, key: StreamKey, since: int) -> bool:
        """True when the stream is up and delivered at or after local time `since`."""
        state = self.states.get(key)
        return (
            state is not None
            and state.up
            and state.last_message is not None
            and state.last_message >= since
        )

    def all_up(self) -> bool:
        """Every stream up (a trade stream is silent in a quiet market: it is not counted;
        the trades of a symbol whose stream is quiet are polled)."""
        return all(state.up for key, state in self.states.items() if key[1] != TRADES)

    def take_changes(self) -> tuple[dict[StreamKey, str], list[StreamKey]]:
        """Streams that went down (with the error) and came back since the last call."""
        down, up = self._went_down, self._came_up
        self._went_down, self._came_up = {}, []
        return down, up

    async def _watch_forever(self, key: StreamKey, watch: Callable[[], Awaitable[Any]]) -> None:
        backoff = self._backoff_for(key)
        while True:
            try:
                data = await self._retried(key, watch)
                if not self._on_data(key, data):
                    raise UnusableStreamData("unusable data (malformed or one-sided)")
            except TimeoutError:
                self._failed(key, f"no data within {self._retry_timeout_s:g}s of retrying", backoff)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise
                self._failed(key, "watch cancelled (client closed?)", backoff)  # not us: retry
            except Exception as exc:  # every stream error is retried; none ends the feed
                self._failed(key, one_line(exc), backoff)
            else:
                self._delivered(key, backoff)
                continue
            await self._sleep(backoff.next_delay_ms() / 1000.0)

    async def _retried(self, key: StreamKey, watch: Callable[[], Awaitable[Any]]) -> Any:
        """One watch; bounded by `retry_timeout_s` while the stream is down. A watch that
        timed out is waited on again at the next retry rather than dropped: ccxt.pro
        hands a message to the one future its pending watches share, and drops a message
        no watch waits for (the value sent on subscribing again, coming while the
        supervisor backs off); cancelling it would cancel that shared future. Only after
        GIVE_UP_AFTER timeouts in a row is it cancelled for a new watch (a watch that
        hangs for good)."""
        if not self.states[key].failures or self._retry_timeout_s is None:
            return await watch()
        pending, timeouts = self._given_up.pop(key, (None, 0))
        if pending is not None and not pending.done() and timeouts >= GIVE_UP_AFTER:
            await _cancelled(pending)
            pending, timeouts = None, 0
        if pending is None or pending.cancelled():
            pending, timeouts = asyncio.ensure_future(watch()), 0
        try:
            done, _ = await asyncio.wait({pending}, timeout=self._retry_timeout_s)
        except BaseException:
            await _cancelled(pending)
            raise
        if not done:
            self._given_up[key] = (pending, timeouts + 1)
            raise TimeoutError
        return pending.result()

    def _delivered(self, key: StreamKey, backoff: Backoff) -> None:
        state = self.states[key]
        if not state.up and state.failures:
            self._came_up.append(key)
        state.up, state.failures = True, 0
        state.last_message = self._clock()
        backoff.reset()

    def _failed(self, key: StreamKey, error: str, backoff: Backoff) -> None:
        self.errors += 1
        state = self.states[key]
        state.failures += 1
        if state.up or state.failures == 1:  # a transition: tell the feed (once)
            self._went_down[key] = error
            self.changed.set()
        else:
            log.debug(
                "exchange feed: %s %s stream retry %d failed: %s", *key, backoff.attempt, error
            )
        state.up = False


async def _cancelled(*futures: asyncio.Future[Any]) -> None:
    """Cancel `futures` and wait until each has ended (their outcome is not wanted)."""
    for future in futures:
        future.cancel()
    for future in futures:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await future
