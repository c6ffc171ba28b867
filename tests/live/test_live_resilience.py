"""Backoff and circuit breaker: pure objects, driven by an injected clock."""

import pytest

from perps_bot.exchange.resilience import Backoff, BreakerState, CircuitBreaker


class FakeClock:
    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def test_backoff_doubles_and_caps() -> None:
    backoff = Backoff(250, 2_000)
    assert [backoff.next_delay_ms() for _ in range(6)] == [250, 500, 1_000, 2_000, 2_000, 2_000]
    backoff.reset()
    assert backoff.next_delay_ms() == 250


def test_backoff_jitter_is_seeded_and_never_longer() -> None:
    a = Backoff(100, 10_000, jitter=0.5, seed=7)
    b = Backoff(100, 10_000, jitter=0.5, seed=7)
    delays_a = [a.next_delay_ms() for _ in range(8)]
    delays_b = [b.next_delay_ms() for _ in range(8)]
    assert delays_a == delays_b
    plain = [Backoff(100, 10_000).delay_ms(i) for i in range(8)]
    assert all(p // 2 <= d <= p for d, p in zip(delays_a, plain, strict=True))
    assert delays_a != plain


@pytest.mark.parametrize(("base", "cap", "jitter"), [(0, 10, 0.0), (10, 5, 0.0), (10, 20, 1.0)])
def test_backoff_rejects_bad_settings(base: int, cap: int, jitter: float) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(base, cap, jitter=jitter)


def test_breaker_opens_after_n_failures_and_recovers_after_cooldown() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=3, cooldown_ms=30_000, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED and not breaker.is_open
    breaker.record_failure()
    assert breaker.is_open and breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.remaining_cooldown_ms() == 30_000

    clock.now += 29_999
    assert not breaker.allow()
    clock.now += 1
    assert breaker.state is BreakerState.HALF_OPEN and not breaker.is_open
    assert breaker.allow()  # the one trial call
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.trips == 1


def test_half_open_failure_reopens_for_a_new_cooldown() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=2, cooldown_ms=1_000, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    clock.now += 1_000
    assert breaker.allow()
    breaker.record_failure()  # the trial failed
    assert breaker.is_open and breaker.trips == 2
    clock.now += 999
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(failures=2, cooldown_ms=1_000, clock=FakeClock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert not breaker.is_open
    assert breaker.consecutive_failures == 1
