"""The deflated Sharpe ratio (Bailey & Lopez de Prado, "The Deflated Sharpe Ratio",
2014): the probability that a strategy's true Sharpe ratio is above the best one
expected from luck alone after N trials.

    SR0 = sqrt(V) * ((1 - g) * Z^-1(1 - 1/N) + g * Z^-1(1 - 1/(N e)))
    DSR = Z((SR - SR0) * sqrt(T - 1) / sqrt(1 - g3 * SR + (g4 - 1) / 4 * SR^2))

SR is the selected strategy's Sharpe ratio per period (not annualised) over T returns
with skewness g3 and (non-excess) kurtosis g4; V the variance of the N trials' Sharpe
ratios (same period); g the Euler-Mascheroni constant; Z the standard normal CDF.
With one trial SR0 is 0 and the DSR is the probabilistic Sharpe ratio (`psr`).
Why it matters here: an optimiser that tried 500 parameter sets will find a good
looking Sharpe ratio in pure noise; the DSR discounts it by how many were tried.
"""

import math
from collections.abc import Sequence
from statistics import NormalDist

EULER_GAMMA = 0.5772156649015329
_Z = NormalDist()


def expected_max_sharpe(trials: int, variance: float) -> float:
    """SR0: the Sharpe ratio the best of `trials` unskilled trials reaches on average."""
    if trials < 1:
        raise ValueError("need at least one trial")
    if variance < 0:
        raise ValueError("a variance cannot be negative")
    if trials == 1 or variance == 0:
        return 0.0
    g = EULER_GAMMA
    spread = (1 - g) * _Z.inv_cdf(1 - 1 / trials) + g * _Z.inv_cdf(1 - 1 / (trials * math.e))
    return math.sqrt(variance) * spread


def deflated_sharpe(
    sharpe: float, returns: int, skew: float, kurtosis: float, trials: int, variance: float
) -> float | None:
    """DSR of a per-period Sharpe ratio from `returns` returns; None when undefined
    (fewer than 2 returns, or a non-positive variance term)."""
    if returns < 2:
        return None
    sr0 = expected_max_sharpe(trials, variance)
    term = 1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe * sharpe
    if term <= 0:
        return None
    return _Z.cdf((sharpe - sr0) * math.sqrt(returns - 1) / math.sqrt(term))


def sample_variance(values: Sequence[float]) -> float:
    """Variance of the trials' Sharpe ratios (n - 1); 0 for fewer than two."""
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)
