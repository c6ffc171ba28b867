"""Synthetic candle files and the CLI runner the research tests share."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as pa_feather

from tests.backtest.test_backtest_cli import run_cli

__all__ = ["run_cli", "write_candles"]

START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
MINUTE = 60_000


def write_candles(
    path: Path, n: int, *, seed: int = 7, start_ms: int = START_MS, price: float = 60_000.0
) -> Path:
    """A seeded geometric random walk of 1-minute candles, as Feather."""
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(0.0, 0.001, n)))
    open_ = np.concatenate(([price], close[:-1]))
    wick = np.abs(rng.normal(0.0, 0.0005, (2, n)))
    table = pa.table(
        {
            "date": start_ms + np.arange(n, dtype=np.int64) * MINUTE,
            "open": open_,
            "high": np.maximum(open_, close) * np.exp(wick[0]),
            "low": np.minimum(open_, close) * np.exp(-wick[1]),
            "close": close,
            "volume": rng.lognormal(3.0, 1.0, n),
        }
    )
    pa_feather.write_feather(table, path)
    return path
