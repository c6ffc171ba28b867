"""RandomWalkFeed: determinism, ordering, tick grid, funding schedule, statistics, pacing."""

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from perps_bot.config.models import FundingProcessConfig, MockConfig, RandomWalkConfig
from perps_bot.domain import FundingRate, MarketEvent, Quote
from perps_bot.feeds import Feed, FeedError
from perps_bot.feeds.random_walk import RandomWalkFeed

START = 1_704_067_200_000  # 2024-01-01T00:00:00Z
HOUR = 3_600_000
SYMBOLS = ["BTC-PERP", "ETH-PERP"]


#: the instruments' tick sizes (prices move on the tick of the symbol's instrument)
TICKS = {"A": 0.05, "B": 0.01, "X": 1e-6, "BTC-PERP": 0.1, "ETH-PERP": 0.01}


def walk_feed(mock: MockConfig, symbols: list[str], seed: int, **options: Any) -> RandomWalkFeed:
    """A feed over `symbols`; a symbol without a price process gets the generic one."""
    missing = {s: RandomWalkConfig() for s in symbols if s not in mock.symbols}
    if missing:
        mock = mock.model_copy(update={"symbols": {**mock.symbols, **missing}})
    return RandomWalkFeed(mock, symbols, seed, tick_sizes=TICKS, **options)


async def collect(feed: RandomWalkFeed) -> list[MarketEvent]:
    events: list[MarketEvent] = []
    async for batch in feed.batches():
        events.extend(batch)
    return events


def jumpy() -> MockConfig:
    walk = RandomWalkConfig(initial_price=500.0, jump_intensity=50.0, jump_std=0.01)
    return MockConfig(symbols={"A": walk, "B": RandomWalkConfig(initial_price=2.0)})


async def test_same_seed_identical_different_seed_different() -> None:
    def make(seed: int) -> RandomWalkFeed:
        return walk_feed(jumpy(), ["A", "B"], seed, start_ms=START, end_ms=START + HOUR)

    first = await collect(make(5))
    assert len(first) == 2 * 3_600 + 2  # and the funding at 00:00 (start is inclusive)
    assert first == await collect(make(5))
    assert first != await collect(make(6))


async def test_symbols_have_independent_streams() -> None:
    both = await collect(walk_feed(MockConfig(), SYMBOLS, 9, start_ms=START, end_ms=START + HOUR))
    alone = await collect(
        walk_feed(MockConfig(), ["ETH-PERP"], 9, start_ms=START, end_ms=START + HOUR)
    )
    assert [e for e in both if e.symbol == "ETH-PERP"] == alone


async def test_chunk_size_does_not_change_the_stream() -> None:
    end = START + 9 * HOUR  # spans the 08:00 funding
    big = await collect(walk_feed(jumpy(), ["A", "B"], 3, start_ms=START, end_ms=end))
    small = await collect(
        walk_feed(jumpy(), ["A", "B"], 3, start_ms=START, end_ms=end, chunk_ticks=7)
    )
    assert big == small


async def test_events_are_in_ts_order_with_symbol_order_within_a_tick() -> None:
    feed = walk_feed(MockConfig(), SYMBOLS, 1, start_ms=START, end_ms=START + 10 * HOUR)
    events = await collect(feed)
    timestamps = [e.ts for e in events]
    assert timestamps == sorted(timestamps)
    quotes = [e for e in events if isinstance(e, Quote)]
    assert [q.symbol for q in quotes[:6]] == SYMBOLS * 3
    assert [q.ts for q in quotes[:4]] == [START, START, START + 1_000, START + 1_000]
    assert quotes[-1].ts == START + 10 * HOUR - 1_000  # end is exclusive
    assert feed.progress() == (10 * HOUR - 1_000, 10 * HOUR)


async def test_prices_on_tick_grid_with_the_configured_spread() -> None:
    mock = MockConfig()
    feed = walk_feed(mock, SYMBOLS, 2, start_ms=START, end_ms=START + HOUR)
    for quote in [e for e in await collect(feed) if isinstance(e, Quote)]:
        tick = TICKS[quote.symbol]
        for price in (quote.last, quote.bid, quote.ask, quote.mark):
            assert abs(price / tick - round(price / tick)) < 1e-6
            assert price == round(price, 2)
        assert quote.bid < quote.last < quote.ask
        spread_bps = (quote.ask - quote.bid) / quote.last * 1e4
        assert 10.0 - 1e-6 <= spread_bps <= 10.0 + 2 * tick / quote.last * 1e4
        assert abs(quote.mark / quote.last - 1) < 10e-4  # mark noise is ~1 bp


async def test_volatility_matches_the_annualised_setting() -> None:
    walk = RandomWalkConfig(initial_price=1_000.0, volatility=0.8)
    mock = MockConfig(symbols={"X": walk}, tick_interval="1m")
    events = await collect(walk_feed(mock, ["X"], 4, start_ms=START, end_ms=START + 30 * 24 * HOUR))
    prices = np.array([e.last for e in events if isinstance(e, Quote)])
    per_step = float(np.std(np.diff(np.log(prices))))
    expected = 0.8 * math.sqrt(60_000 / (365 * 86_400_000))
    assert per_step == pytest.approx(expected, rel=0.03)


async def test_jumps_fatten_the_tails() -> None:
    async def log_returns(intensity: float) -> np.ndarray:
        walk = RandomWalkConfig(initial_price=100.0, jump_intensity=intensity, jump_std=0.02)
        mock = MockConfig(symbols={"X": walk})
        feed = walk_feed(mock, ["X"], 11, start_ms=START, end_ms=START + 24 * HOUR)
        quotes = [e.last for e in await collect(feed) if isinstance(e, Quote)]
        return np.diff(np.log(quotes))

    calm = await log_returns(0.0)
    jumping = await log_returns(20.0)
    assert np.max(np.abs(calm)) < 0.002
    assert np.sum(np.abs(jumping) > 0.01) >= 5  # about 20 jumps of ~2% in a day


async def test_funding_at_00_08_16_utc_after_the_quotes_of_that_tick() -> None:
    start = START + 3 * HOUR  # 03:00
    feed = walk_feed(MockConfig(), SYMBOLS, 1, start_ms=start, end_ms=start + 24 * HOUR)
    events = await collect(feed)
    funding = [(i, e) for i, e in enumerate(events) if isinstance(e, FundingRate)]
    hours = [
        datetime.fromtimestamp(e.ts / 1000, tz=UTC).strftime("%d %H:%M:%S") for _, e in funding
    ]
    assert hours == [
        "01 08:00:00",
        "01 08:00:00",
        "01 16:00:00",
        "01 16:00:00",
        "02 00:00:00",
        "02 00:00:00",
    ]
    for index, event in funding:
        tick_quotes = [
            e for e in events[index - 3 : index] if isinstance(e, Quote) and e.ts == event.ts
        ]
        assert tick_quotes, "funding follows the quotes of its own timestamp"
        same_symbol = [q for q in tick_quotes if q.symbol == event.symbol]
        assert event.mark == same_symbol[-1].mark
    assert [e.symbol for _, e in funding[:2]] == SYMBOLS


async def test_funding_on_grid_when_ticks_do_not_land_on_it() -> None:
    mock = MockConfig(tick_interval="7s")
    feed = walk_feed(mock, ["BTC-PERP"], 1, start_ms=START + 1, end_ms=START + 17 * HOUR)
    events = await collect(feed)
    funding = [i for i, e in enumerate(events) if isinstance(e, FundingRate)]
    assert [events[i].ts for i in funding] == [START + 8 * HOUR, START + 16 * HOUR]
    for i in funding:
        before, after = events[i - 1], events[i + 1]
        assert isinstance(before, Quote) and before.ts < events[i].ts < after.ts
        assert events[i].mark == before.mark


async def test_funding_rate_process_mean_reverts_and_is_clamped() -> None:
    def mock(funding: FundingProcessConfig) -> MockConfig:
        return MockConfig(funding=funding, tick_interval="1h")

    steady = FundingProcessConfig(mean_rate=0.0002, volatility=0.0, reversion=0.5)
    feed = walk_feed(mock(steady), ["X"], 1, start_ms=START, end_ms=START + 10 * 24 * HOUR)
    rates = [e.rate for e in await collect(feed) if isinstance(e, FundingRate)]
    assert len(rates) == 30 and set(rates) == {0.0002}
    wild = FundingProcessConfig(mean_rate=0.0, volatility=0.01, reversion=0.1, clamp=0.003)
    feed = walk_feed(mock(wild), ["X"], 1, start_ms=START, end_ms=START + 10 * 24 * HOUR)
    rates = [e.rate for e in await collect(feed) if isinstance(e, FundingRate)]
    assert max(rates) == 0.003 and min(rates) == -0.003


async def test_no_funding_when_interval_disabled() -> None:
    feed = walk_feed(
        MockConfig(), ["X"], 1, start_ms=START, end_ms=START + 9 * HOUR, funding_interval_ms=0
    )
    assert not [e for e in await collect(feed) if isinstance(e, FundingRate)]


async def test_endless_feed_runs_until_stopped() -> None:
    feed = walk_feed(MockConfig(), SYMBOLS, 1, start_ms=START, end_ms=None, chunk_ticks=100)
    assert feed.simulated is True
    batches = 0
    async for _batch in feed.batches():
        batches += 1
        if batches == 5:
            await feed.stop()
    assert batches == 5
    assert feed.progress() == (499_000, None)


async def test_realtime_paces_one_tick_per_batch_on_the_clock() -> None:
    now = [1_000.0]
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    feed = walk_feed(
        MockConfig(tick_interval="500ms"),
        SYMBOLS,
        1,
        start_ms=START,
        end_ms=START + 5_000,
        realtime=True,
        clock=lambda: now[0],
        sleep=fake_sleep,
    )
    assert feed.simulated is False
    batches = [list(b) async for b in feed.batches()]
    assert [len(b) for b in batches] == [4] + [2] * 9  # 00:00 funding joins the first tick
    assert [b[0].ts for b in batches] == [START + 500 * i for i in range(10)]
    assert sleeps == [pytest.approx(0.5)] * 9
    simulated = await collect(
        walk_feed(
            MockConfig(tick_interval="500ms"), SYMBOLS, 1, start_ms=START, end_ms=START + 5_000
        )
    )
    assert [e for b in batches for e in b] == simulated


def test_bad_arguments_raise_feed_error() -> None:
    with pytest.raises(FeedError):
        RandomWalkFeed(MockConfig(), [], 1, tick_sizes=TICKS, start_ms=START, end_ms=None)
    with pytest.raises(FeedError):
        RandomWalkFeed(MockConfig(), ["X", "X"], 1, tick_sizes=TICKS, start_ms=START, end_ms=None)
    with pytest.raises(FeedError):
        walk_feed(MockConfig(), ["X"], 1, start_ms=START, end_ms=START)
    with pytest.raises(FeedError, match="no price process for DOGE-PERP"):
        RandomWalkFeed(
            MockConfig(), ["DOGE-PERP"], 1, tick_sizes=TICKS, start_ms=START, end_ms=None
        )


def test_implements_the_feed_protocol() -> None:
    feed: Feed = walk_feed(MockConfig(), ["X"], 1, start_ms=START, end_ms=START + 1_000)
    assert feed.progress() == (0, 1_000)
