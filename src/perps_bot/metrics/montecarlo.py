"""`report --monte-carlo N`: how much of a run's result is the order its trades came in.

A bootstrap of the trade sequence: N paths, each drawing as many trades as the run
closed, with replacement, from its trades' net PnL (fees and funding included), and
chaining them from the initial balance. For each path: the final return and the
largest peak-to-trough fall of that trade-by-trade equity (as a fraction of the
peak). The report gives percentiles of both and the share of paths that lost money.
Reproducible: the same trades, N and seed give the same numbers (numpy's PCG64 from
the seed, paths drawn in a fixed order in chunks that bound the memory).
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

PERCENTILES = (5, 25, 50, 75, 95)
CHUNK_CELLS = 2_000_000  # paths x trades drawn at once (16 MB of float64)


def bootstrap(
    pnl: Sequence[float], initial_balance: float, paths: int, seed: int = 0
) -> dict[str, Any]:
    """Percentiles of final return (%) and max drawdown (fraction) over `paths` paths."""
    if paths < 1:
        raise ValueError("the Monte Carlo needs at least one path")
    if initial_balance <= 0:
        raise ValueError("the initial balance must be positive")
    values = np.asarray(pnl, dtype=np.float64)
    n = int(values.shape[0])
    out: dict[str, Any] = {"paths": paths, "seed": seed, "trades": n}
    if n == 0:
        return out | {"return_pct": None, "max_drawdown": None, "loss_probability": None}
    rng = np.random.default_rng(seed)
    finals = np.empty(paths)
    drawdowns = np.empty(paths)
    per_chunk = max(1, CHUNK_CELLS // n)
    for start in range(0, paths, per_chunk):
        stop = min(start + per_chunk, paths)
        draws = values[rng.integers(0, n, size=(stop - start, n))]
        finals[start:stop], drawdowns[start:stop] = _paths(draws, initial_balance)
    returns = (finals - initial_balance) / initial_balance * 100.0
    return out | {
        "return_pct": _percentiles(returns),
        "max_drawdown": _percentiles(drawdowns),
        "loss_probability": float(np.mean(finals < initial_balance)),
    }


def _paths(
    draws: npt.NDArray[np.float64], initial: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    equity = initial + np.cumsum(draws, axis=1)
    peak = np.maximum(np.maximum.accumulate(equity, axis=1), initial)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, (peak - equity) / peak, 0.0)
    return equity[:, -1], dd.max(axis=1)


def _percentiles(values: npt.NDArray[np.float64]) -> dict[str, float]:
    found = np.percentile(values, PERCENTILES)
    return {f"p{p}": float(v) for p, v in zip(PERCENTILES, found, strict=True)}
