"""The mock exchange's market data: a seeded random walk per symbol (SPEC 4, dev profile).

Why it looks like this:

* Speed. A simulated week of 1 s ticks on two symbols is 1.2M quotes and the
  whole bot must process them in well under a minute, so prices are generated
  with numpy in chunks (`chunk_ticks` ticks per symbol at a time); a chunk becomes
  one batch, kept as its columns (`QuoteColumns`): the orchestrator builds a `Quote`
  only for a tick a stage has to see one by one.
* Determinism. Every symbol has its own generators, spawned from
  `SeedSequence([seed, zlib.crc32(symbol)])` (never Python's `hash()`), one per
  random quantity (price shocks, jump counts, jump sizes, mark noise, funding).
  Because no generator is shared between quantities, the stream does not depend
  on the chunk size: realtime pacing (small batches) and `--dev-fast` (large
  batches) produce the same events for the same seed.
* Time. Ticks are at `start_ms + k * tick_interval` for `start_ms <= ts < end_ms`
  (half-open). Funding settles on the UTC epoch grid (00:00, 08:00, 16:00 for
  8h): a `FundingRate` for each symbol (in the given order) comes right after
  the quotes of the last tick at or before the funding time, stamped with the
  funding time and priced at that tick's mark.

The model, per symbol (parameters from `RandomWalkConfig`, annualised over 365 days):

* mid: geometric Brownian motion, log step (drift - vol^2/2) dt + vol sqrt(dt) Z,
  plus compound-Poisson jumps (`jump_intensity` per day, log size N(0, jump_std),
  i.e. lognormal multiplicative jumps).
* last = mid rounded to `tick_size`; bid/ask = mid -/+ spread_bps/2, rounded
  outwards to the tick grid, at least one tick apart.
* mark = mid * (1 + noise), noise a stationary mean-reverting series with a
  standard deviation of `mark_noise_bps` (white noise filtered by a truncated
  exponential kernel of half-life `MARK_NOISE_HALFLIFE_TICKS`, a vectorised
  stand-in for an AR(1)), rounded to the tick.
* funding rate per interval: r <- r + reversion (mean - r) + volatility N(0,1),
  clamped to +-clamp, starting at the mean (`FundingProcessConfig`).

Floats throughout: these are simulated prices, not accounting records.
"""

import asyncio
import math
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from perps_bot.config.models import MockConfig, RandomWalkConfig
from perps_bot.domain import DAY_MS, YEAR_MS, FundingRate, MarketEvent, Quote
from perps_bot.domain.timeutil import parse_duration
from perps_bot.feeds.base import FeedError
from perps_bot.feeds.quote_columns import QuoteColumns, QuoteLists

EIGHT_HOURS_MS = 8 * 3_600_000
MARK_NOISE_HALFLIFE_TICKS = 10
DEFAULT_CHUNK_TICKS = 3_600
_KERNEL_CUTOFF = 1e-4  # truncate the mark-noise kernel where weights fall below this


def _mark_kernel() -> "np.ndarray[tuple[int], np.dtype[np.float64]]":
    decay = 0.5 ** (1.0 / MARK_NOISE_HALFLIFE_TICKS)
    taps = math.ceil(math.log(_KERNEL_CUTOFF) / math.log(decay))
    weights = decay ** np.arange(taps, dtype=np.float64)
    weights /= math.sqrt(float(np.sum(weights**2)))  # unit stationary variance
    kernel: np.ndarray[tuple[int], np.dtype[np.float64]] = weights[::-1].copy()
    return kernel  # reversed: convolve 'valid' puts the newest shock's weight last


_KERNEL = _mark_kernel()


def _decimals(step: float) -> int:
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 8


class _SymbolWalk:
    """Price, mark and funding state of one symbol."""

    def __init__(
        self,
        symbol: str,
        walk: RandomWalkConfig,
        tick_size: float,
        mock: MockConfig,
        seed: int,
        tick_ms: int,
    ) -> None:
        funding = mock.funding
        self.symbol = symbol
        self.funding = funding
        root = np.random.SeedSequence([seed & 0xFFFF_FFFF_FFFF_FFFF, zlib.crc32(symbol.encode())])
        price, jump_count, jump_size, mark, funding_rng = (
            np.random.default_rng(child) for child in root.spawn(5)
        )
        self.price_rng, self.jump_count_rng, self.jump_size_rng = price, jump_count, jump_size
        self.mark_rng, self.funding_rng = mark, funding_rng
        dt = tick_ms / YEAR_MS
        self.drift_step = (walk.drift - 0.5 * walk.volatility**2) * dt
        self.vol_step = walk.volatility * math.sqrt(dt)
        self.jump_lambda = walk.jump_intensity * tick_ms / DAY_MS
        self.jump_std = walk.jump_std
        self.log_price = math.log(walk.initial_price)
        self.tick = tick_size
        self.decimals = _decimals(tick_size)
        self.half_spread = mock.spread_bps / 2e4
        self.mark_noise = mock.mark_noise_bps / 1e4
        self.mark_tail = self.mark_rng.standard_normal(len(_KERNEL) - 1)
        self.rate = funding.mean_rate

    def chunk(self, n: int) -> tuple[list[float], list[float], list[float], list[float]]:
        """The next `n` ticks as (last, bid, ask, mark) lists."""
        steps = self.drift_step + self.vol_step * self.price_rng.standard_normal(n)
        if self.jump_lambda > 0:
            counts = self.jump_count_rng.poisson(self.jump_lambda, n)
            sizes = self.jump_size_rng.standard_normal(n)
            steps += sizes * self.jump_std * np.sqrt(counts)
        log_path = self.log_price + np.cumsum(steps)
        self.log_price = float(log_path[-1])
        mid = np.exp(log_path)
        shocks = np.concatenate((self.mark_tail, self.mark_rng.standard_normal(n)))
        self.mark_tail = shocks[len(shocks) - (len(_KERNEL) - 1) :]
        noise = np.convolve(shocks, _KERNEL, mode="valid")
        tick, dec = self.tick, self.decimals
        last = np.maximum(np.round(np.round(mid / tick) * tick, dec), tick)
        bid = np.floor(mid * (1.0 - self.half_spread) / tick + 1e-9) * tick
        bid = np.maximum(np.round(bid, dec), tick)
        ask = np.ceil(mid * (1.0 + self.half_spread) / tick - 1e-9) * tick
        ask = np.maximum(np.round(ask, dec), np.round(bid + tick, dec))
        mark = mid * (1.0 + self.mark_noise * noise)
        mark = np.maximum(np.round(np.round(mark / tick) * tick, dec), tick)
        return last.tolist(), bid.tolist(), ask.tolist(), mark.tolist()

    def state(self) -> tuple[object, ...]:
        """Generators and path state: `restore_state` makes the same future ticks."""
        rngs = (self.price_rng, self.jump_count_rng, self.jump_size_rng, self.mark_rng,
                self.funding_rng)  # fmt: skip
        return (
            [rng.bit_generator.state for rng in rngs],
            self.log_price,
            self.mark_tail,  # replaced, never written in place: no copy needed
            self.rate,
        )

    def restore_state(self, state: Any) -> None:
        rng_states, log_price, mark_tail, rate = state
        rngs = (self.price_rng, self.jump_count_rng, self.jump_size_rng, self.mark_rng,
                self.funding_rng)  # fmt: skip
        for rng, rng_state in zip(rngs, rng_states, strict=True):
            rng.bit_generator.state = rng_state
        self.log_price = float(log_price)
        self.mark_tail = np.asarray(mark_tail, dtype=np.float64)
        self.rate = float(rate)

    def next_rate(self) -> float:
        f = self.funding
        shock = float(self.funding_rng.standard_normal())
        rate = self.rate + f.reversion * (f.mean_rate - self.rate) + f.volatility * shock
        self.rate = min(max(rate, -f.clamp), f.clamp)
        return self.rate


class RandomWalkFeed:
    """Seeded random-walk quotes and funding for the mock exchange (implements Feed).

    `clock` and `sleep` (monotonic seconds, asyncio.sleep by default) only matter
    with `realtime=True`; tests replace them to check pacing without waiting.
    """

    def __init__(
        self,
        mock: MockConfig,
        symbols: Sequence[str],
        seed: int,
        *,
        tick_sizes: Mapping[str, float],
        start_ms: int,
        end_ms: int | None,
        realtime: bool = False,
        funding_interval_ms: int = EIGHT_HOURS_MS,
        chunk_ticks: int = DEFAULT_CHUNK_TICKS,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        if not symbols:
            raise FeedError("random walk feed needs at least one symbol")
        if len(set(symbols)) != len(symbols):
            raise FeedError(f"random walk feed got duplicate symbols: {list(symbols)}")
        if end_ms is not None and end_ms <= start_ms:
            raise FeedError(f"random walk feed end {end_ms} must be after start {start_ms}")
        if chunk_ticks < 1:
            raise FeedError(f"chunk_ticks must be >= 1, got {chunk_ticks}")
        self.symbols = list(symbols)
        self.simulated = not realtime
        self.candle_history = False
        self.mark_extremes = False
        self.realtime = realtime
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.tick_ms = parse_duration(mock.tick_interval)
        self.funding_interval_ms = funding_interval_ms
        self.chunk_ticks = chunk_ticks
        self._clock = clock or time.monotonic
        self._sleep = sleep or asyncio.sleep
        missing = [s for s in self.symbols if s not in mock.symbols or s not in tick_sizes]
        if missing:
            raise FeedError(
                f"the mock exchange has no price process for {missing[0]}: add"
                f" mock.symbols.{missing[0]} (initial_price, volatility, ...) to the profile"
            )
        self._walks = [
            _SymbolWalk(s, mock.symbols[s], tick_sizes[s], mock, seed, self.tick_ms)
            for s in self.symbols
        ]
        self._next_tick = 0  # index of the next tick to generate
        self._next_funding = (
            -(-start_ms // funding_interval_ms) * funding_interval_ms
            if funding_interval_ms > 0
            else None
        )
        self._emitted_ts: int | None = None
        self._stopped = False
        # for checkpoints: the state before the current chunk was generated, how many of
        # its events were handed out, and how many to drop after a restore
        self._chunk_start: tuple[object, ...] = self._position()
        self._emitted_in_chunk = 0
        self._skip = 0

    @property
    def total_ticks(self) -> int | None:
        if self.end_ms is None:
            return None
        return -(-(self.end_ms - self.start_ms) // self.tick_ms)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._stopped = True

    def strategy_bar_ms(self, timeframe: str) -> int | None:
        """Ticks, not candles: the orchestrator builds the strategy's bars itself."""
        return None

    def progress(self) -> tuple[int, int | None]:
        """(simulated ms elapsed since start, total ms or None when endless)."""
        done = 0 if self._emitted_ts is None else self._emitted_ts - self.start_ms
        total = None if self.end_ms is None else self.end_ms - self.start_ms
        return done, total

    async def batches(self) -> AsyncIterator[Sequence[MarketEvent]]:
        """Chunks of events in ts order (realtime: one tick's events per batch, paced
        from the first tick handed out, also after a restore)."""
        started: tuple[float, int] | None = None  # (wall clock, ts) of the first tick
        while not self._stopped:
            events = self._next_chunk()
            if events is None:
                return
            if not events:
                continue  # handed out before the checkpoint this run resumed from
            if not self.realtime:
                self._emitted_ts = events[-1].ts
                self._emitted_in_chunk += len(events)
                yield events
                await asyncio.sleep(0)  # let signal handlers and other tasks run
                continue
            for group in _by_tick(events):
                if self._stopped:
                    return
                if started is None:
                    started = (self._clock(), group[0].ts)
                delay = started[0] + (group[0].ts - started[1]) / 1000.0 - self._clock()
                if delay > 0:
                    await self._sleep(delay)
                self._emitted_ts = group[-1].ts
                self._emitted_in_chunk += len(group)
                yield group

    # -- checkpoints ---------------------------------------------------------------
    def _position(self) -> tuple[object, ...]:
        return (self._next_tick, self._next_funding, [w.state() for w in self._walks])

    def _next_chunk(self) -> Sequence[MarketEvent] | None:
        """The next chunk, less the events a restored checkpoint had already handed out."""
        self._chunk_start = self._position()
        self._emitted_in_chunk = 0
        events = self._generate_chunk()
        if events is None or not self._skip:
            return events
        skip, self._skip = self._skip, 0
        self._emitted_in_chunk = skip
        if skip >= len(events):
            return []  # all handed out before the checkpoint: nothing to build
        return events[skip:]

    def state(self) -> tuple[object, ...]:
        """Where the feed is, for a checkpoint between batches: the generators as they
        were before the current chunk and how many of its events were handed out (the
        chunk is made again on restore, so a realtime run resumes mid-chunk)."""
        return (self._chunk_start, self._emitted_in_chunk, self._emitted_ts, self.start_ms)

    def restore_state(self, state: Any) -> None:
        (next_tick, next_funding, walks), emitted, emitted_ts, start_ms = state
        # a realtime run started at its own wall time: its ticks go on from there
        self.start_ms = start_ms
        self._next_tick, self._next_funding = next_tick, next_funding
        for walk, walk_state in zip(self._walks, walks, strict=True):
            walk.restore_state(walk_state)
        self._skip = int(emitted)
        self._emitted_ts = emitted_ts

    def _generate_chunk(self) -> QuoteColumns | None:
        total = self.total_ticks
        n = self.chunk_ticks if total is None else min(self.chunk_ticks, total - self._next_tick)
        if n <= 0:
            return None
        first_ts = self.start_ms + self._next_tick * self.tick_ms
        self._next_tick += n
        ts = (first_ts + np.arange(n, dtype=np.int64) * self.tick_ms).tolist()
        columns = [QuoteLists(*walk.chunk(n)) for walk in self._walks]
        return QuoteColumns(ts, self.symbols, columns, self._funding_inserts(ts, columns))

    def _funding_inserts(
        self, ts: list[int], columns: list[QuoteLists]
    ) -> list[tuple[int, MarketEvent]]:
        """The settlements in this chunk, each placed after the quotes of the last tick
        at or before its time."""
        inserts: list[tuple[int, MarketEvent]] = []
        if self._next_funding is None:
            return inserts
        window_end = ts[-1] + self.tick_ms
        if self.end_ms is not None:
            window_end = min(window_end, self.end_ms)
        width = len(self._walks)
        while self._next_funding < window_end:
            funding_ts = self._next_funding
            index = (funding_ts - ts[0]) // self.tick_ms  # last tick at or before funding_ts
            cut = (index + 1) * width
            for walk, column in zip(self._walks, columns, strict=True):
                rate, mark = walk.next_rate(), column.mark[index]
                inserts.append((cut, FundingRate(funding_ts, walk.symbol, rate, mark)))
            self._next_funding += self.funding_interval_ms
        return inserts


def _by_tick(events: Sequence[MarketEvent]) -> list[list[MarketEvent]]:
    """Split a chunk into one group per tick (quotes of a ts plus the funding after them)."""
    groups: list[list[MarketEvent]] = []
    current_ts: int | None = None
    for event in events:
        if isinstance(event, Quote) and event.ts != current_ts:
            groups.append([])
            current_ts = event.ts
        groups[-1].append(event)
    return groups
