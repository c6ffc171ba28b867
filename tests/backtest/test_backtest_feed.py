"""CandleFeed: candle close times, funding schedule and order, mark alignment, batching."""

import asyncio
from collections.abc import Sequence

import numpy as np
import pytest

from perps_bot.domain import Candle, FundingRate, MarketEvent
from perps_bot.feeds import Feed, FeedError
from perps_bot.feeds.historical import CandleFeed
from perps_bot.feeds.loaders import CandleArrays, FundingArrays, MarkArrays, load_candles
from tests.conftest import SHARED_DATA

H = 3_600_000
H8 = 8 * H
DAY0 = 1_700_006_400_000  # 2023-11-15T00:00:00Z, a multiple of 8h
RATE = 0.0001


def candles(n: int, interval: int = H, start: int = DAY0, cls: type = CandleArrays) -> CandleArrays:
    close = 100.0 + np.arange(n, dtype=np.float64)
    return cls(  # type: ignore[no-any-return]
        open_time=start + np.arange(n, dtype=np.int64) * interval,
        open=close - 0.5,
        high=close + 1.0,
        low=close - 1.0,
        close=close,
        volume=np.full(n, 5.0),
        interval_ms=interval,
    )


def collect(feed: CandleFeed) -> list[list[MarketEvent]]:
    async def run() -> list[list[MarketEvent]]:
        await feed.start()
        out = [list(batch) async for batch in feed.batches()]
        await feed.stop()
        return out

    return asyncio.run(run())


def flat(batches: Sequence[Sequence[MarketEvent]]) -> list[MarketEvent]:
    return [e for b in batches for e in b]


def make(data: CandleArrays, **kwargs: object) -> CandleFeed:
    kwargs.setdefault("funding_interval_ms", H8)
    kwargs.setdefault("default_funding_rate", RATE)
    return CandleFeed("XRP-PERP", data, **kwargs)  # type: ignore[arg-type]


def test_is_a_simulated_feed() -> None:
    feed: Feed = make(candles(3))
    assert feed.simulated is True


def test_candle_ts_is_close_time_and_values_pass_through() -> None:
    data = candles(5, interval=5 * 60_000)
    events = flat(collect(make(data)))
    assert all(isinstance(e, Candle) for e in events)
    bars = [e for e in events if isinstance(e, Candle)]
    assert [c.ts for c in bars] == (data.open_time + 300_000).tolist()
    assert [c.open_time for c in bars] == data.open_time.tolist()
    assert [c.close for c in bars] == data.close.tolist()
    assert bars[0].symbol == "XRP-PERP"
    assert bars[0].mark is None and bars[0].mark_high is None


def test_default_funding_every_8h_after_the_candle_closing_then() -> None:
    data = candles(30)  # 1h candles closing 01:00 .. 06:00 next day
    events = flat(collect(make(data)))
    funding = [e for e in events if isinstance(e, FundingRate)]
    assert [f.ts - DAY0 for f in funding] == [8 * H, 16 * H, 24 * H]
    for f in funding:
        assert f.rate == RATE and f.symbol == "XRP-PERP"
        i = events.index(f)
        before = events[i - 1]
        assert isinstance(before, Candle) and before.ts == f.ts  # right after its candle
        assert f.mark == before.close
        assert isinstance(events[i + 1], Candle) and events[i + 1].ts > f.ts
    assert [e.ts for e in events] == sorted(e.ts for e in events)


def test_funding_rates_from_file_else_default() -> None:
    data = candles(48)
    file = FundingArrays(
        ts=np.array([DAY0 + 16 * H, DAY0 + 24 * H], dtype=np.int64),
        rate=np.array([-0.002, 0.0005]),
        interval_ms=H8,
    )
    feed = make(data, funding=file)
    funding = [e for e in flat(collect(feed)) if isinstance(e, FundingRate)]
    assert [(f.ts - DAY0) // H for f in funding] == [8, 16, 24, 32, 40, 48]
    assert [f.rate for f in funding] == [RATE, -0.002, 0.0005, RATE, RATE, RATE]
    assert (feed.funding_from_file, feed.funding_defaulted) == (2, 4)


def test_funding_interval_mismatch_is_rejected() -> None:
    file = FundingArrays(ts=np.array([DAY0], dtype=np.int64), rate=np.array([RATE]), interval_ms=H)
    with pytest.raises(FeedError, match="funding interval"):
        make(candles(3), funding=file)


@pytest.mark.parametrize("batch_size", [1, 7, 8, 9, 10_000])
def test_batching_never_changes_the_event_sequence(batch_size: int) -> None:
    data = candles(50)
    reference = [(type(e).__name__, e.ts) for e in flat(collect(make(data)))]
    feed = make(data, batch_size=batch_size)
    batches = collect(feed)
    assert [(type(e).__name__, e.ts) for e in flat(batches)] == reference
    assert max(sum(isinstance(e, Candle) for e in b) for b in batches) <= batch_size
    assert feed.progress() == (50, 50)


def test_progress_counts_candles_and_stop_ends_the_stream() -> None:
    feed = make(candles(25), batch_size=10)

    async def run() -> list[tuple[int, int | None]]:
        seen = []
        async for _ in feed.batches():
            seen.append(feed.progress())
            if len(seen) == 2:
                await feed.stop()
        return seen

    assert asyncio.run(run()) == [(10, 25), (20, 25)]


def test_mark_series_same_interval_is_aligned_by_close() -> None:
    data = candles(10)
    mark = candles(10, cls=MarkArrays)
    mark = MarkArrays(
        open_time=mark.open_time,
        open=mark.open + 0.1,
        high=mark.high + 0.2,
        low=mark.low + 0.05,
        close=mark.close + 0.1,
        volume=np.full(10, np.nan),
        interval_ms=H,
    )
    bars = [e for e in flat(collect(make(data, mark=mark))) if isinstance(e, Candle)]
    assert [b.mark for b in bars] == (mark.close).tolist()
    assert [b.mark_high for b in bars] == (mark.high).tolist()
    assert [b.mark_low for b in bars] == (mark.low).tolist()


def test_mark_series_never_looks_ahead() -> None:
    # 15m candles against 1h marks starting one hour in: the first hour has no mark,
    # then each candle sees only the last mark candle already closed.
    data = candles(12, interval=15 * 60_000)
    mark = candles(2, start=DAY0 + H, cls=MarkArrays)
    bars = [e for e in flat(collect(make(data, mark=mark))) if isinstance(e, Candle)]
    assert [b.mark for b in bars[:8]] == [None] * 7 + [mark.close[0]]
    # the mark hour closed inside this candle, but its extremes are the hour's, at
    # unknown times: they are given to none of its 15m candles
    assert bars[7].mark_high is None and bars[7].mark_low is None
    assert bars[8].mark == mark.close[0] and bars[8].mark_high is None
    assert bars[11].mark == mark.close[1]


def test_finer_mark_series_is_aggregated_per_candle() -> None:
    data = candles(3)  # 1h
    minutes = 180
    mark = MarkArrays(
        open_time=DAY0 + np.arange(minutes, dtype=np.int64) * 60_000,
        open=np.full(minutes, 100.0),  # the candles' market: closes 100 .. 102
        high=100.0 + np.arange(minutes, dtype=np.float64),
        low=100.0 - np.arange(minutes, dtype=np.float64) / 100,
        close=np.full(minutes, 100.0),
        volume=np.full(minutes, np.nan),
        interval_ms=60_000,
    )
    bars = [e for e in flat(collect(make(data, mark=mark))) if isinstance(e, Candle)]
    # candle k spans mark minutes [60k, 60k+59]; its own first minute closes inside it too
    assert [b.mark_high for b in bars] == [159.0, 219.0, 279.0]
    assert [b.mark_low for b in bars] == [100.0 - 0.59, 100.0 - 1.19, 100.0 - 1.79]


def test_funding_mark_uses_the_mark_series_when_present() -> None:
    data = candles(10)
    mark = candles(10, cls=MarkArrays)
    mark = MarkArrays(
        open_time=mark.open_time,
        open=mark.open,
        high=mark.high + 5,
        low=mark.low,
        close=mark.close + 3.0,
        volume=mark.volume,
        interval_ms=H,
    )
    funding = [e for e in flat(collect(make(data, mark=mark))) if isinstance(e, FundingRate)]
    assert len(funding) == 1
    assert funding[0].mark == mark.close[7]  # the mark candle closing at 08:00


def test_real_5m_file_with_default_funding() -> None:
    data = load_candles(SHARED_DATA / "futures" / "XRP_USDT_USDT-5m-futures.feather")
    feed = make(data)
    events = flat(collect(feed))
    funding = [e for e in events if isinstance(e, FundingRate)]
    assert sum(isinstance(e, Candle) for e in events) == 1999
    # 2021-11-15 08:00 through 2021-11-21 16:00 (the last candle closes 22:35)
    assert len(funding) == 20 == feed.funding_count
    assert all(f.ts % H8 == 0 for f in funding)


def test_a_mark_candle_across_two_candles_gives_its_extremes_to_neither() -> None:
    # 6h candles against 4h marks: the 00-04 mark lies inside candle 00-06, the 04-08
    # one across candles 00-06 and 06-12, the 08-12 one inside candle 06-12
    data = candles(2, interval=6 * H)
    mark = candles(3, interval=4 * H, cls=MarkArrays)
    mark = MarkArrays(
        open_time=mark.open_time,
        open=mark.open,
        high=np.array([101.0, 150.0, 102.0]),
        low=np.array([99.0, 50.0, 98.0]),
        close=mark.close,
        volume=mark.volume,
        interval_ms=4 * H,
    )
    bars = [e for e in flat(collect(make(data, mark=mark))) if isinstance(e, Candle)]
    assert [(b.mark_low, b.mark_high) for b in bars] == [(99.0, 101.0), (98.0, 102.0)]
