"""Price and indicator series of a run, for the report's price chart.

Why stored at all: a dev or live run keeps no market data, and the trader wants to
see where the strategy fired against the price and its indicators. Why this shape:
the run samples at most a few thousand points per symbol (see
`orchestrator.plot_sampler`), so the whole series of a symbol is written once as
blobs (little-endian int64 ms / float64, NaN where an indicator was not defined
yet), one row per (symbol, series), replaced whole on each write.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS plot_series (
    run_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    position INTEGER NOT NULL,        -- 0 = price, then the strategy's series in order
    name TEXT NOT NULL,
    ts BLOB NOT NULL,                 -- little-endian int64 ms, increasing
    value BLOB NOT NULL,              -- little-endian float64, NaN = no value
    PRIMARY KEY (run_id, symbol, position)
);
"""

PRICE = "price"


@dataclass(frozen=True)
class SymbolSeries:
    """One symbol's sampled series; `values[PRICE]` is the last traded price."""

    ts: npt.NDArray[np.int64]
    values: dict[str, npt.NDArray[np.float64]]

    @property
    def price(self) -> npt.NDArray[np.float64]:
        return self.values[PRICE]


def write(
    db: sqlite3.Connection,
    run_id: str,
    symbol: str,
    ts: npt.NDArray[np.int64],
    values: dict[str, npt.NDArray[np.float64]],
) -> None:
    """Replace the symbol's series (caller holds the transaction). `values` keeps its
    order, price first."""
    db.execute(TABLE_SQL)
    db.execute("DELETE FROM plot_series WHERE run_id=? AND symbol=?", (run_id, symbol))
    stamp = ts.astype("<i8").tobytes()
    db.executemany(
        "INSERT INTO plot_series VALUES (?,?,?,?,?,?)",
        [
            (run_id, symbol, i, name, stamp, column.astype("<f8").tobytes())
            for i, (name, column) in enumerate(values.items())
        ],
    )


def read(db: sqlite3.Connection, run_id: str) -> dict[str, SymbolSeries]:
    """Every symbol's series, by symbol; empty for a run (or an older file) without."""
    try:
        rows = db.execute(
            "SELECT symbol, name, ts, value FROM plot_series WHERE run_id=?"
            " ORDER BY symbol, position",
            (run_id,),
        ).fetchall()
    except sqlite3.OperationalError:  # a file written before the table existed
        return {}
    out: dict[str, SymbolSeries] = {}
    for symbol, name, ts, value in rows:
        series = out.get(symbol)
        if series is None:
            series = out[symbol] = SymbolSeries(np.frombuffer(ts, dtype="<i8").astype(np.int64), {})
        series.values[name] = np.frombuffer(value, dtype="<f8").astype(np.float64)
    return out
