"""Candle files written by the backtest tests, and the times they are read at."""

from datetime import datetime
from pathlib import Path


def ms(iso: str) -> int:
    """Epoch milliseconds of an ISO time ("2024-03-01T08:00:00Z")."""
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def daily(path: Path, bars: list[tuple[float, float, float, float]]) -> Path:
    """A CSV of daily candles (open, high, low, close) from 2024-03-01 on."""
    with path.open("w") as fh:
        fh.write("timestamp,open,high,low,close,volume\n")
        for k, (o, h, lo, c) in enumerate(bars):
            fh.write(f"2024-03-{k + 1:02d}T00:00:00Z,{o},{h},{lo},{c},10\n")
    return path
