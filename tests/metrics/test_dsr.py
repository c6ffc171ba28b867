"""The deflated Sharpe ratio against the paper's formula worked by hand (Bailey & Lopez
de Prado 2014, and their numerical example), and its properties."""

import math
from statistics import NormalDist

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from perps_bot.metrics.dsr import (
    EULER_GAMMA,
    deflated_sharpe,
    expected_max_sharpe,
    sample_variance,
)
from perps_bot.metrics.equity import Moments
from perps_bot.metrics.stats import probabilistic_sharpe


def test_the_papers_example() -> None:
    """Annualised SR 2.5 over 1250 daily returns (5 years of 250 days), 100 trials whose
    annualised Sharpe ratios vary by 0.5, skewness -3, kurtosis 10: DSR 0.9004."""
    sr = 2.5 / math.sqrt(250)
    value = deflated_sharpe(sr, 1250, -3.0, 10.0, 100, 0.5 / 250)
    assert value is not None and round(value, 4) == 0.9004


def test_a_case_worked_by_hand() -> None:
    # SR0 = sqrt(V) * ((1 - g) * Z^-1(1 - 1/N) + g * Z^-1(1 - 1/(N e)))
    z = NormalDist().inv_cdf
    n, v = 20, 0.01
    sr0 = math.sqrt(v) * (
        (1 - 0.5772156649) * z(1 - 1 / 20) + 0.5772156649 * z(1 - 1 / (20 * math.e))
    )
    assert math.isclose(expected_max_sharpe(n, v), sr0, rel_tol=1e-9)
    assert math.isclose(
        sr0, 0.1 * (0.4227843351 * 1.6448536270 + 0.5772156649 * 2.0880), abs_tol=2e-4
    )
    # DSR = Z((SR - SR0) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2))
    sr, t, g3, g4 = 0.3, 100, 0.5, 4.0
    by_hand = NormalDist().cdf((sr - sr0) * math.sqrt(99) / math.sqrt(1 - 0.5 * 0.3 + 0.75 * 0.09))
    assert math.isclose(deflated_sharpe(sr, t, g3, g4, n, v) or 0.0, by_hand, rel_tol=1e-12)
    assert EULER_GAMMA == 0.5772156649015329


def test_one_trial_is_the_probabilistic_sharpe_ratio() -> None:
    returns = np.random.default_rng(3).normal(0.001, 0.01, 400)
    moments = Moments()
    moments.add(returns)
    std = moments.sample_std
    assert std is not None and moments.skew is not None and moments.kurtosis is not None
    dsr = deflated_sharpe(moments.mean / std, moments.n, moments.skew, moments.kurtosis, 1, 0.3)
    assert dsr is not None and math.isclose(dsr, probabilistic_sharpe(moments) or -1, rel_tol=1e-12)


@given(
    sr=st.floats(-0.5, 0.5),
    t=st.integers(30, 5000),
    trials=st.integers(1, 10_000),
    more=st.integers(1, 10_000),
    variance=st.floats(1e-6, 0.5),
)
def test_more_trials_never_raise_the_dsr(
    sr: float, t: int, trials: int, more: int, variance: float
) -> None:
    few = deflated_sharpe(sr, t, 0.0, 3.0, trials, variance)
    many = deflated_sharpe(sr, t, 0.0, 3.0, trials + more, variance)
    assert few is not None and many is not None
    assert 0.0 <= many <= few <= 1.0


@given(st.lists(st.floats(-5, 5), min_size=2, max_size=50))
def test_sample_variance_is_numpys(values: list[float]) -> None:
    assert math.isclose(sample_variance(values), float(np.var(values, ddof=1)), abs_tol=1e-9)
