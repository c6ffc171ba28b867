"""`report --monte-carlo`: the bootstrap of the trade order is reproducible by seed,
its percentiles are ordered, and small cases match what can be worked out by hand."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perps_bot.metrics.montecarlo import bootstrap

PNL = st.lists(st.floats(-500, 500, allow_nan=False), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None)
@given(pnl=PNL, seed=st.integers(0, 2**32 - 1), paths=st.integers(1, 300))
def test_the_same_seed_gives_the_same_percentiles(pnl: list[float], seed: int, paths: int) -> None:
    first = bootstrap(pnl, 10_000.0, paths, seed)
    assert bootstrap(pnl, 10_000.0, paths, seed) == first
    for key in ("return_pct", "max_drawdown"):
        values = list(first[key].values())
        assert values == sorted(values)  # p5 <= p25 <= ... <= p95
    assert all(v >= 0 for v in first["max_drawdown"].values())


def test_another_seed_draws_other_paths() -> None:
    pnl = [float(x) for x in range(-20, 21)]
    a, b = bootstrap(pnl, 10_000.0, 500, 1), bootstrap(pnl, 10_000.0, 500, 2)
    assert a["return_pct"] != b["return_pct"]


def test_winners_only_never_draw_down_and_never_lose() -> None:
    result = bootstrap([5.0, 10.0, 1.0], 1_000.0, 200, 7)
    assert set(result["max_drawdown"].values()) == {0.0}
    assert result["loss_probability"] == 0.0
    assert 0.3 <= result["return_pct"]["p5"] <= result["return_pct"]["p95"] <= 3.0


def test_two_trades_by_hand() -> None:
    """+100 / -100 from 1,000: paths ++ (+20%), +- and -+ (0%), -- (-20%, drawdown 20%);
    with many paths the median is 0% and a quarter of the paths lose money."""
    result = bootstrap([100.0, -100.0], 1_000.0, 20_000, 3)
    assert result["return_pct"]["p5"] == -20.0 and result["return_pct"]["p95"] == 20.0
    assert result["return_pct"]["p50"] == 0.0
    assert math.isclose(result["loss_probability"], 0.25, abs_tol=0.015)
    assert result["max_drawdown"]["p95"] == pytest.approx(0.2)  # -- from the start
    assert result["max_drawdown"]["p5"] == 0.0  # ++


def test_no_trades_no_numbers() -> None:
    assert bootstrap([], 1_000.0, 10, 0)["return_pct"] is None
