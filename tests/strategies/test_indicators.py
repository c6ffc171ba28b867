"""Incremental indicators against direct computations over the window."""

import math
import pickle
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perps_bot.strategies.indicators import MeanPair, RollingStats, WilderRsi

prices = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    windows=st.tuples(st.integers(1, 12), st.integers(1, 12)).filter(lambda w: w[0] != w[1]),
    values=st.lists(prices, max_size=120),
)
def test_mean_pair_matches_window_means(windows: tuple[int, int], values: list[float]) -> None:
    fast, slow = sorted(windows)
    pair = MeanPair(fast, slow)
    for n, value in enumerate(values, start=1):
        ready = pair.push(value)
        assert ready == (n >= slow)
        if ready:
            scale = max(values[:n])
            assert pair.fast_mean == pytest.approx(
                math.fsum(values[n - fast : n]) / fast, rel=1e-12, abs=1e-12 * scale
            )
            assert pair.slow_mean == pytest.approx(
                math.fsum(values[n - slow : n]) / slow, rel=1e-12, abs=1e-12 * scale
            )


def test_mean_pair_resyncs_so_a_long_run_does_not_drift() -> None:
    pair = MeanPair(3, 7)
    # 99,995 + 7 = 100,002 values: a multiple of both windows, so both sums were just
    # recomputed exactly
    values = [1e6 + (i % 17) * 0.1 for i in range(99_995)] + [0.1] * 7
    for value in values:
        pair.push(value)
    assert pair.slow_mean == math.fsum([0.1] * 7) / 7  # no drift left from the 1e6 values
    assert pair.fast_mean == math.fsum([0.1] * 3) / 3


@pytest.mark.parametrize(("fast", "slow"), [(0, 3), (3, 3), (4, 3)])
def test_mean_pair_rejects_bad_windows(fast: int, slow: int) -> None:
    with pytest.raises(ValueError, match="fast < slow"):
        MeanPair(fast, slow)


@settings(max_examples=300, deadline=None)
@given(
    window=st.integers(2, 12),
    level=st.floats(min_value=1e-2, max_value=1e5),
    steps=st.lists(st.sampled_from([0, 0, 0, 1, -1, 7, -7]), max_size=100),
)
def test_rolling_stats_match_the_window_and_a_flat_window_has_no_std(
    window: int, level: float, steps: list[int]
) -> None:
    # prices a few ticks apart, often repeated, so windows go flat after moves
    values = [level * (1.0 + 1e-3 * sum(steps[: k + 1])) for k in range(len(steps))]
    stats = RollingStats(window)
    for n, value in enumerate(values, start=1):
        assert stats.push(value) == (n >= window)
        if n < window:
            continue
        win = values[n - window : n]
        if len(set(win)) == 1:
            assert (stats.mean, stats.std) == (value, 0.0), win
        else:
            scale = max(abs(x) for x in win)
            assert stats.mean == pytest.approx(statistics.fmean(win), rel=1e-12)
            assert stats.std == pytest.approx(statistics.pstdev(win), rel=1e-9, abs=1e-12 * scale)


def test_rolling_stats_restore_from_checkpoints_with_and_without_the_flat_count() -> None:
    stats = RollingStats(3)
    for value in (5.0, 6.0, 6.0):
        stats.push(value)
    copy = pickle.loads(pickle.dumps(stats))
    assert [copy.push(6.0), copy.mean, copy.std] == [True, 6.0, 0.0]
    # a checkpoint pickled by the code before the flat count (no _last, _same slots)
    make, args, (_, slots) = stats.__reduce_ex__(2)[:3]
    older = make(*args)
    older.__setstate__((None, {k: v for k, v in slots.items() if k not in ("_last", "_same")}))
    for value in (6.0, 6.0, 6.0):
        assert older.push(value)
    assert (older.mean, older.std) == (6.0, 0.0)


@given(values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=40), cut=st.integers(0, 40))
def test_indicators_pickled_mid_stream_go_on_as_if_never_stopped(
    values: list[float], cut: int
) -> None:
    """A strategy's indicators are in its checkpoint: pickled at any point (compiled or
    not: their `__reduce__` spells it out), the copy goes on with the same floats."""
    made = [MeanPair(2, 5), RollingStats(4), WilderRsi(3)]
    cut = min(cut, len(values))
    for value in values[:cut]:
        for one in made:
            one.push(value)
    copies = [pickle.loads(pickle.dumps(one)) for one in made]
    for value in values[cut:]:
        for one, copy in zip(made, copies, strict=True):
            assert repr(copy.push(value)) == repr(one.push(value))
    assert repr((copies[0].fast_mean, copies[0].slow_mean)) == repr(
        (made[0].fast_mean, made[0].slow_mean)
    )
    assert repr((copies[1].mean, copies[1].std)) == repr((made[1].mean, made[1].std))
