"""Incremental indicators against direct computations over the window."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perps_bot.strategies.indicators import MeanPair

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
