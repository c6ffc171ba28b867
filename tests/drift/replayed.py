"""A capture replayed through `run_replay` (default fill choice), as the replay tests
read it back: the stored fills of the replay's run."""

import sqlite3
from pathlib import Path
from typing import Any

from perps_bot.orchestrator.replay import FillChoice, run_replay


def replayed_fills(
    folder: Path, db: Path, columns: str = "ts, side, size, price, liquidity"
) -> list[tuple[Any, ...]]:
    """`columns` of the fills of a completed replay of the capture in `folder`."""
    _, result = run_replay(folder, FillChoice(), db=str(db))
    assert result.status == "completed"
    with sqlite3.connect(db) as conn:
        return conn.execute(
            f"SELECT {columns} FROM fills WHERE run_id=? ORDER BY rowid", (result.run_id,)
        ).fetchall()
