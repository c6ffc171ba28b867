"""The price/indicator sampler: bounded, evenly spread, exact values, stored and read back."""

import math
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from perps_bot.orchestrator.plot_sampler import PlotSampler
from perps_bot.storage import PRICE, RunStore
from perps_bot.strategies import SmaCross
from tests.strategies.test_builtin_strategies import candle, make_ctx

MINUTE = 60_000


def _drive(sampler: PlotSampler, prices: dict[str, float], n: int, step: int = MINUTE) -> None:
    for i in range(n):
        ts = 1_000_000 + i * step
        prices["A"] = 100.0 + i
        if ts >= sampler.next_ts:
            sampler.sample(ts)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3_000), cap=st.integers(4, 64))
def test_sample_count_stays_between_half_cap_and_cap(n: int, cap: int) -> None:
    prices: dict[str, float] = {}
    sampler = PlotSampler(SmaCross({}, make_ctx()), prices, MINUTE, cap=cap)
    _drive(sampler, prices, n)
    rows = sampler._samples["A"]
    ts = [row[0] for row in rows]
    assert len(ts) < cap
    assert len(ts) == n or len(ts) >= cap // 2 - 1
    # evenly spread: one sample per final interval, no two in the same interval
    slots = [t // sampler.interval_ms for t in ts]
    assert slots == sorted(set(slots))
    # the price kept is the price at the sample's time
    price = [row[1] for row in rows]
    assert price == [100.0 + (t - 1_000_000) // MINUTE for t in ts]


def test_indicators_are_the_strategy_values_and_round_trip_through_the_store(
    tmp_path: Path,
) -> None:
    strategy = SmaCross({"fast": 2, "slow": 3}, make_ctx())
    prices: dict[str, float] = {}
    sampler = PlotSampler(strategy, prices, MINUTE)
    closes = [10.0, 11.0, 13.0, 16.0]
    for i, close in enumerate(closes):
        strategy.on_event(candle(i, close, "A"))
        prices["A"] = close
        sampler.sample(i * MINUTE)
    with RunStore(tmp_path / "s.sqlite") as store:
        sampler.write(store, "r")
        series = store.plot_series("r")["A"]
        assert list(series.values) == [PRICE, "SMA 2", "SMA 3"]
    assert series.ts.tolist() == [0, MINUTE, 2 * MINUTE, 3 * MINUTE]
    assert series.price.tolist() == closes
    fast = series.values["SMA 2"].tolist()
    slow = series.values["SMA 3"].tolist()
    # both averages appear with the slow window's first full bar (MeanPair)
    assert all(math.isnan(v) for v in slow[:2] + fast[:2])
    assert fast[2:] == [12.0, 14.5]
    assert slow[2:] == [34.0 / 3, 40.0 / 3]


def test_a_run_without_series_and_an_older_file_read_as_empty(tmp_path: Path) -> None:
    with RunStore(tmp_path / "s.sqlite") as store:
        assert store.plot_series("nope") == {}
        store._db.execute("DROP TABLE plot_series")
        assert store.plot_series("nope") == {}


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.integers(1, 5), min_size=1, max_size=400),
    cap=st.integers(4, 32),
    chunk=st.integers(1, 40),
)
def test_samples_taken_ahead_by_due_and_add_are_those_sample_takes(
    gaps: list[int], cap: int, chunk: int
) -> None:
    """A quiet stretch asks `due` which of its snapshots the chart samples and takes them
    with `add` (no thinning among them; the one that thins goes through `sample`): the
    samples, interval and next time are those of `sample` at every snapshot."""
    ts = [sum(gaps[: i + 1]) * MINUTE for i in range(len(gaps))]
    prices: dict[str, float] = {}
    one = PlotSampler(SmaCross({}, make_ctx()), prices, MINUTE, cap=cap)
    for i, t in enumerate(ts):
        prices["A"] = float(i)
        if t >= one.next_ts:
            one.sample(t)
    ahead_prices: dict[str, float] = {}
    strategy = SmaCross({}, make_ctx())
    ahead = PlotSampler(strategy, ahead_prices, MINUTE, cap=cap)
    i = 0
    while i < len(ts):
        stop = min(len(ts), i + chunk)
        due, cut = ahead.due(ts, i, stop)
        assert all(i <= k < cut for k in due)
        for k in due:
            ahead.add(ts[k], "A", float(k), strategy.plot_values("A"))
        if cut < stop:  # the sample that thins
            ahead_prices["A"] = float(cut)
            ahead.sample(ts[cut])
            cut += 1
        i = cut
    # repr: the NaN of a plot value not known yet is equal to itself only as the same
    # object, and the compiled sampler keeps floats unboxed (a new NaN object each time)
    assert repr(ahead.state()) == repr(one.state())
