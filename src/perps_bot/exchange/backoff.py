"""Exponential backoff with deterministic jitter, for anything that retries an exchange.

It lives in `exchange` with the circuit breaker because both the exchange feed and
the live venue retry the exchange, and both layers may import this one.

The object never sleeps: it only computes delays and the caller sleeps through an
injectable `sleep`, so tests run without waiting in real time. Jitter comes from a
`numpy.random.Generator` seeded explicitly, so the same seed retries at the same
offsets (the project's determinism rule); one bot does not need unpredictable jitter.
"""

import numpy as np

from perps_bot.config.models import ExchangeConfig
from perps_bot.domain.timeutil import parse_duration


class Backoff:
    """Exponential backoff: base, 2*base, 4*base, ... capped at `max_ms`.

    `jitter` in [0, 1) shrinks each delay by a random fraction of up to `jitter`
    ("equal-ish" jitter: never longer than the un-jittered delay).
    """

    def __init__(
        self,
        base_ms: int,
        max_ms: int,
        *,
        factor: float = 2.0,
        jitter: float = 0.0,
        seed: int = 0,
    ) -> None:
        if base_ms <= 0 or max_ms < base_ms:
            raise ValueError(f"backoff needs 0 < base_ms <= max_ms (got {base_ms}, {max_ms})")
        if not 0.0 <= jitter < 1.0:
            raise ValueError(f"backoff jitter must be in [0, 1) (got {jitter})")
        if factor < 1.0:
            raise ValueError(f"backoff factor must be >= 1 (got {factor})")
        self.base_ms = base_ms
        self.max_ms = max_ms
        self.factor = factor
        self.jitter = jitter
        self._rng = np.random.default_rng(seed)
        self.attempt = 0

    def delay_ms(self, attempt: int) -> int:
        """The un-jittered delay before retry number `attempt` (0 = first retry)."""
        raw = self.base_ms * self.factor ** min(attempt, 64)
        return int(min(raw, self.max_ms))

    def next_delay_ms(self) -> int:
        """The delay before the next retry; advances the attempt counter."""
        delay = self.delay_ms(self.attempt)
        self.attempt += 1
        if self.jitter > 0.0:
            delay = int(delay * (1.0 - self.jitter * float(self._rng.random())))
        return max(delay, 1)

    def reset(self) -> None:
        """Start again from `base_ms` (call after a success)."""
        self.attempt = 0


def backoff_of(cfg: ExchangeConfig, *, jitter: float = 0.0, seed: int = 0) -> Backoff:
    """The profile's backoff: `exchange.backoff_base` doubling up to `backoff_max` (a
    maximum under the base is taken as the base)."""
    base_ms = parse_duration(cfg.backoff_base)
    return Backoff(base_ms, max(parse_duration(cfg.backoff_max), base_ms), jitter=jitter, seed=seed)
