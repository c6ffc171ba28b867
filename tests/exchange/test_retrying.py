"""exchange.retrying: which exchange errors are asked again, after how long, and when
the caller is told to give up."""

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import ccxt.async_support as ccxt_async
import pytest

from perps_bot.exchange.backoff import Backoff
from perps_bot.exchange.retrying import GaveUp, retried
from perps_bot.exchange.runtime import RETRY_AFTER_ATTR


class _Unusable(Exception):
    pass


def _answers(*outcomes: Any) -> tuple[Callable[[], Any], list[int]]:
    """A call that raises or returns `outcomes` in turn, and the count of calls."""
    calls = [0]

    async def call() -> Any:
        outcome = outcomes[calls[0]]
        calls[0] += 1
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return call, calls


def _run(call: Callable[[], Any], exchange: Any = None, **kw: Any) -> tuple[Any, list[int]]:
    paused: list[int] = []

    async def pause(ms: int) -> None:
        paused.append(ms)

    result = asyncio.run(
        retried(
            call,
            exchange=exchange or SimpleNamespace(),
            backoff=Backoff(100, 1_000),
            max_retries=kw.pop("max_retries", 3),
            pause=pause,
            **kw,
        )
    )
    return result, paused


def test_passing_failures_are_asked_again_after_the_backoff() -> None:
    call, calls = _answers(ccxt_async.RequestTimeout("t"), ccxt_async.OperationFailed("-1001"), 42)
    assert _run(call) == (42, [100, 200])
    assert calls == [3]


def test_a_rate_limit_waits_the_exchanges_retry_after_never_less_than_the_backoff() -> None:
    exchange = SimpleNamespace(**{RETRY_AFTER_ATTR: 7.0})
    call, _ = _answers(ccxt_async.RateLimitExceeded("429"), ccxt_async.DDoSProtection("418"), 1)
    heard: list[tuple[str, int]] = []
    result = _run(call, exchange, on_retry=lambda why, ms: heard.append((why, ms)))
    assert result == (1, [7_000, 200])  # the second refusal said no Retry-After
    assert heard[0] == ("rate limited (RateLimitExceeded: 429)", 7_000)


def test_a_refusal_is_not_asked_again() -> None:
    call, calls = _answers(ccxt_async.BadSymbol("unknown symbol"), 1)
    with pytest.raises(ccxt_async.BadSymbol):
        _run(call)
    assert calls == [1]


def test_the_callers_own_unusable_answers_count_as_passing() -> None:
    call, _ = _answers(_Unusable("not a list"), 5)
    assert _run(call, also_passing=(_Unusable,)) == (5, [100])
    call, _ = _answers(_Unusable("not a list"), 5)
    with pytest.raises(_Unusable):
        _run(call)


def test_it_gives_up_after_max_retries_failed_tries_in_a_row() -> None:
    call, calls = _answers(*[ccxt_async.NetworkError(f"down {i}") for i in range(5)])
    with pytest.raises(GaveUp) as gave_up:
        _run(call, max_retries=2)
    assert calls == [3]
    assert (gave_up.value.tries, gave_up.value.last) == (3, "NetworkError: down 2")
