"""The windows of a walk-forward run (SPEC 13): for each, its training and test ranges,
the parameters the optimiser chose on the training window, their in-sample metrics,
and the per-period Sharpe ratios of every trial it completed (the deflated Sharpe
ratio needs how many were tried and how much their Sharpe ratios varied).

Kept in a table of its own next to the run, written once by `perps-bot walkforward`
and read by `report` and `promote`. A database from before this table reads as a
run without windows.
"""

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS walkforward_windows (
    run_id TEXT NOT NULL,
    window INTEGER NOT NULL,
    train_start INTEGER NOT NULL,
    train_end INTEGER NOT NULL,
    test_start INTEGER NOT NULL,
    test_end INTEGER NOT NULL,
    params TEXT NOT NULL,             -- JSON object: the chosen parameters
    in_sample TEXT NOT NULL,          -- JSON object: their metrics on the training window
    sharpes TEXT NOT NULL,            -- JSON list: per-period Sharpe of each completed trial
    PRIMARY KEY (run_id, window)
);
"""


@dataclass(frozen=True, slots=True)
class WindowRecord:
    window: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int
    params: dict[str, Any]
    in_sample: dict[str, Any]
    sharpes: list[float]


def save_windows(db: sqlite3.Connection, run_id: str, windows: list[WindowRecord]) -> None:
    """Write the windows of `run_id` (the caller holds the transaction)."""
    db.execute(TABLE_SQL)
    db.executemany(
        "INSERT OR REPLACE INTO walkforward_windows VALUES (?,?,?,?,?,?,?,?,?)",
        [
            (run_id, w.window, w.train_start, w.train_end, w.test_start, w.test_end,
             json.dumps(w.params, sort_keys=True), json.dumps(w.in_sample, sort_keys=True),
             json.dumps(w.sharpes))
            for w in windows
        ],
    )  # fmt: skip


def load_windows(db: sqlite3.Connection, run_id: str) -> list[WindowRecord]:
    """The windows of `run_id` in order; [] for any other run (or an older database)."""
    try:
        rows = db.execute(
            "SELECT window, train_start, train_end, test_start, test_end, params, in_sample,"
            " sharpes FROM walkforward_windows WHERE run_id=? ORDER BY window",
            (run_id,),
        ).fetchall()
    except sqlite3.OperationalError:  # no such table
        return []
    return [
        WindowRecord(int(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), json.loads(r[5]),
                     json.loads(r[6]), [float(x) for x in json.loads(r[7])])
        for r in rows
    ]  # fmt: skip
