"""The streaming feed's watch loops (feeds.stream_supervisor): a stream that went down
comes back up even when a retried watch hangs (a subscription lost on a socket the
exchange accepted again), instead of staying down with the feed on REST for good."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from perps_bot.exchange.backoff import Backoff
from perps_bot.feeds.stream_supervisor import StreamSupervisor

KEY = ("BTC-PERP", "book")


async def _no_sleep(_seconds: float) -> None:
    await asyncio.sleep(0)


def _watch(script: list[str]) -> Callable[[], Awaitable[Any]]:
    """Each call plays the next step: 'fail' raises, 'hang' never returns, else data."""

    async def watch() -> Any:
        await asyncio.sleep(0.001)  # a real watch waits for the next message
        step = script.pop(0) if script else "data"
        if step == "fail":
            raise ConnectionError("connection closed by remote")
        if step == "hang":
            await asyncio.Event().wait()
        return step

    return watch


async def _up_within(supervisor: StreamSupervisor, seconds: float) -> bool:
    for _ in range(int(seconds / 0.01)):
        if supervisor.states[KEY].up:
            return True
        await asyncio.sleep(0.01)
    return False


def _supervisor(script: list[str], retry_timeout_s: float | None) -> StreamSupervisor:
    return StreamSupervisor(
        {KEY: _watch(script)},
        on_data=lambda _key, _data: True,
        backoff_for=lambda _key: Backoff(base_ms=1, max_ms=1),
        clock=lambda: 0,
        sleep=_no_sleep,
        retry_timeout_s=retry_timeout_s,
    )


async def test_a_retried_watch_that_hangs_is_given_up_and_retried() -> None:
    supervisor = _supervisor(["data", "fail", "hang", "data"], retry_timeout_s=0.05)
    supervisor.start()
    try:
        assert await _up_within(supervisor, 1.0)  # the first watch delivered
        for _ in range(100):  # the second failed: down
            if not supervisor.states[KEY].up:
                break
            await asyncio.sleep(0.005)
        assert await _up_within(supervisor, 2.0), "the stream stayed down"
        _, up = supervisor.take_changes()
        assert KEY in up
    finally:
        await supervisor.stop()


async def test_an_up_stream_may_be_silent_for_longer() -> None:
    """A diff stream is silent in a quiet market: an up stream's watch is not bounded."""
    supervisor = _supervisor(["data", "hang"], retry_timeout_s=0.05)
    supervisor.start()
    try:
        assert await _up_within(supervisor, 1.0)
        await asyncio.sleep(0.2)  # four times the retry bound, silent
        assert supervisor.states[KEY].up and supervisor.errors == 0
    finally:
        await supervisor.stop()


class _OnePendingWatch:
    """A stream with ccxt.pro's semantics: every watch waits on the stream's one pending
    future (a watch given up on leaves it pending), a message resolves it and is then
    gone, and a message that comes while no watch waits is dropped. The first watch
    fails (the connection dropped); the message sent on subscribing again comes while
    the supervisor backs off after a retried watch timed out (it took longer to
    reconnect than the retry bound)."""

    def __init__(self) -> None:
        self.pending: asyncio.Future[Any] | None = None
        self.calls = 0
        self.sleeps = 0

    async def watch(self) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("connection closed by remote")
        if self.pending is None:
            self.pending = asyncio.get_running_loop().create_future()
        return await asyncio.shield(self.pending)

    async def sleep(self, _seconds: float) -> None:
        self.sleeps += 1
        if self.sleeps == 2:  # backing off after the retried watch timed out
            assert self.pending is not None and not self.pending.done()
            self.pending.set_result("the value sent on subscribing")
            self.pending = None  # resolved: ccxt keeps no backlog
        await asyncio.sleep(0)


def _supervising(stream: "_OnePendingWatch") -> StreamSupervisor:
    """A started supervisor of `stream`'s one watch, backing off with its `sleep`."""
    supervisor = StreamSupervisor(
        {KEY: stream.watch},
        on_data=lambda _key, _data: True,
        backoff_for=lambda _key: Backoff(base_ms=1, max_ms=1),
        clock=lambda: 0,
        sleep=stream.sleep,
        retry_timeout_s=0.05,
    )
    supervisor.start()
    return supervisor


async def _comes_up(supervisor: StreamSupervisor, stream: "_OnePendingWatch") -> None:
    assert await _up_within(supervisor, 2.0), (
        f"the stream stayed down: {supervisor.states[KEY]}, {stream.calls} watches"
    )


async def test_data_that_comes_while_backing_off_from_a_timed_out_watch_is_not_lost() -> None:
    stream = _OnePendingWatch()
    supervisor = _supervising(stream)
    try:
        # the stream is connected and subscribed again and sends nothing more (a quiet
        # market): it is up only if the message that came during the backoff is taken
        await _comes_up(supervisor, stream)
        assert stream.sleeps == 2
    finally:
        await supervisor.stop()
    assert all(task.done() for task in supervisor.tasks)


class _SharedFutureWatch(_OnePendingWatch):
    """ccxt.pro as it is: the pending watches of a stream await its one future itself,
    unshielded, so cancelling a watch cancels the future under every other one (and a
    message then resolves nothing). The message comes after two retried watches timed
    out, while the supervisor backs off."""

    async def watch(self) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("connection closed by remote")
        if self.pending is None or self.pending.cancelled():
            self.pending = asyncio.get_running_loop().create_future()
        return await self.pending

    async def sleep(self, _seconds: float) -> None:
        self.sleeps += 1
        if self.sleeps == 3 and self.pending is not None and not self.pending.done():
            self.pending.set_result("the value sent on subscribing")
            self.pending = None
        await asyncio.sleep(0)


async def test_a_message_after_two_timed_out_watches_is_not_lost() -> None:
    stream = _SharedFutureWatch()
    supervisor = _supervising(stream)
    try:
        await _comes_up(supervisor, stream)
    finally:
        await supervisor.stop()
