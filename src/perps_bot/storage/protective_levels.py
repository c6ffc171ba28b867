"""The stop-loss and take-profit levels of the account's positions (SPEC 9, 16), kept in
the run store so that a restarted bot can place a protective order that went missing
on the exchange while it was down (cancelled by hand, expired, rejected).

One row per entry that asked for protection, under a scope (`profile/portfolio`, like
the trading state: the account outlives runs). A row is written, committed, before its
entry's order is sent (`pending`: size NULL); the entry's fill makes it the levels of
the symbol (`active`, older active rows of the symbol go), and `size` is the position
size the protective orders last covered. `stop_sent` / `tp_sent` count the protective
orders placed for the row: they make each placement's client id new and
deterministic (orchestrator.protective_levels). Rows go when the position closes or
the entry ends without its levels coming into force. The table is created on first use.
"""

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from perps_bot.domain import Side

_TABLE = """CREATE TABLE IF NOT EXISTS protective_levels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: it is part of client ids
    scope TEXT NOT NULL,                   -- profile/portfolio
    symbol TEXT NOT NULL,
    entry_client_id TEXT NOT NULL,         -- the entry whose fill sets the levels
    side TEXT NOT NULL,                    -- the protected position's: buy (long), sell
    stop REAL,
    take_profit REAL,
    active INTEGER NOT NULL DEFAULT 0,     -- 1: the entry filled, these are in force
    size REAL,                             -- position size last covered (NULL: none yet)
    stop_sent INTEGER NOT NULL DEFAULT 0,  -- protective orders placed for the row
    tp_sent INTEGER NOT NULL DEFAULT 0,
    run_id TEXT NOT NULL,                  -- the run that wrote it last
    updated_at INTEGER NOT NULL,           -- wall clock ms
    UNIQUE (scope, symbol, entry_client_id)
)"""

_COLUMNS = "id, symbol, entry_client_id, side, stop, take_profit, active, size, stop_sent, tp_sent"
#: order statuses that are not final (the order may still fill)
OPEN_STATUSES = ("new", "unknown", "accepted", "partially_filled")


@dataclass(frozen=True, slots=True)
class StoredLevels:
    id: int
    symbol: str
    entry_client_id: str
    side: Side
    stop: float | None
    take_profit: float | None
    active: bool
    size: float | None
    stop_sent: int
    tp_sent: int


def create(db: sqlite3.Connection) -> None:
    db.execute(_TABLE)


def load(db: sqlite3.Connection, scope: str) -> list[StoredLevels]:
    """The scope's rows, oldest first."""
    return _rows(db, "scope=? ORDER BY id", (scope,))


def find(
    db: sqlite3.Connection, scope: str, symbol: str, entry_client_id: str
) -> StoredLevels | None:
    found = _rows(db, "scope=? AND symbol=? AND entry_client_id=?", (scope, symbol,
                  entry_client_id))  # fmt: skip
    return found[0] if found else None


def _rows(db: sqlite3.Connection, where: str, args: tuple[str, ...]) -> list[StoredLevels]:
    rows = db.execute(f"SELECT {_COLUMNS} FROM protective_levels WHERE {where}", args)
    return [_levels(r) for r in rows.fetchall()]


def _levels(r: tuple[Any, ...]) -> StoredLevels:
    return StoredLevels(int(r[0]), str(r[1]), str(r[2]), Side(r[3]), r[4], r[5], bool(r[6]),
                        r[7], int(r[8]), int(r[9]))  # fmt: skip


def add_pending(
    db: sqlite3.Connection,
    scope: str,
    symbol: str,
    entry_client_id: str,
    side: Side,
    levels: tuple[float | None, float | None],
    run_id: str,
) -> None:
    db.execute(
        "INSERT OR IGNORE INTO protective_levels (scope, symbol, entry_client_id, side, stop,"
        " take_profit, run_id, updated_at) VALUES (?,?,?,?,?,?,?,?)",
        (scope, symbol, entry_client_id, str(side), *levels, run_id, _now()),
    )


def activate(db: sqlite3.Connection, scope: str, row_id: int, symbol: str, run_id: str) -> None:
    """Row `row_id` is the symbol's levels now; the symbol's older active rows go."""
    db.execute(
        "DELETE FROM protective_levels WHERE scope=? AND symbol=? AND active=1 AND id<>?",
        (scope, symbol, row_id),
    )
    db.execute(
        "UPDATE protective_levels SET active=1, run_id=?, updated_at=? WHERE id=?",
        (run_id, _now(), row_id),
    )


def update(db: sqlite3.Connection, row_id: int, run_id: str, **values: float | int) -> None:
    """Set `size`, `stop_sent` or `tp_sent` of a row."""
    assert set(values) <= {"size", "stop_sent", "tp_sent"}
    assignments = ", ".join(f"{name}=?" for name in values)
    db.execute(
        f"UPDATE protective_levels SET {assignments}, run_id=?, updated_at=? WHERE id=?",
        (*values.values(), run_id, _now(), row_id),
    )


def set_levels(
    db: sqlite3.Connection,
    row_id: int,
    run_id: str,
    side: Side,
    stop: float | None,
    take_profit: float | None,
) -> None:
    """New levels for a row in force (a target that moved the stop of what is held)."""
    db.execute(
        "UPDATE protective_levels SET side=?, stop=?, take_profit=?, run_id=?, updated_at=?"
        " WHERE id=?",
        (str(side), stop, take_profit, run_id, _now(), row_id),
    )


def delete(db: sqlite3.Connection, row_ids: list[int]) -> None:
    db.executemany("DELETE FROM protective_levels WHERE id=?", [(i,) for i in row_ids])


def entries_filled(db: sqlite3.Connection, client_ids: list[str]) -> set[str]:
    """The entries (client ids) with a stored fill, in any run of the database."""
    return _matching(db, "SELECT DISTINCT client_id FROM fills WHERE client_id IN", client_ids)


def entries_open(db: sqlite3.Connection, client_ids: list[str]) -> set[str]:
    """The entries (client ids) whose stored order is not final yet."""
    marks = ",".join("?" * len(OPEN_STATUSES))
    sql = f"SELECT DISTINCT client_id FROM orders WHERE status IN ({marks}) AND client_id IN"
    return _matching(db, sql, client_ids, OPEN_STATUSES)


def _matching(
    db: sqlite3.Connection, sql: str, client_ids: list[str], args: tuple[str, ...] = ()
) -> set[str]:
    if not client_ids:
        return set()
    marks = ",".join("?" * len(client_ids))
    rows = db.execute(f"{sql} ({marks})", (*args, *client_ids)).fetchall()
    return {str(r[0]) for r in rows}


def _now() -> int:
    return int(time.time() * 1000)
