"""What survives a restart (SPEC 9): the trading state of the database's account, runs
left `running` by a process that is gone, and checkpoints of paper runs.

- Trading state: one row per portfolio of the database's account (a database is one
  profile's account; `main` when it runs one strategy), the risk gate's exported state
  as JSON, rewritten at every state change and at the end of
  every run; `trading_state_log` keeps each change with its reason (a halt, and the
  `perps-bot resume-trading` that lifted it).
- Crashed runs: only the holder of the database lock (storage.lock) writes, so when a
  bot takes the lock every run still `running` was left by a process that is gone.
- Checkpoints: the last one of each run, written in the same transaction as the rows
  it covers. It records how far each table had got (`marks`); resuming deletes the
  rows written after it, which the resumed run writes again. The state itself is an
  opaque blob (pickled by orchestrator.checkpoint) tied to the code version.
"""

import json
import os
import socket
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from perps_bot.domain import DEFAULT_PORTFOLIO, Order, iso_utc
from perps_bot.storage.connection import damaged
from perps_bot.storage.orders import INSERT_SQL as ORDERS_INSERT
from perps_bot.storage.orders import order_row

TRADING_STATE_SQL = """
CREATE TABLE IF NOT EXISTS trading_state (
    portfolio TEXT PRIMARY KEY,       -- 'main', or each portfolio of a run with several
    profile TEXT NOT NULL,
    state TEXT NOT NULL,              -- ACTIVE | REDUCING | HALTED
    detail TEXT NOT NULL,             -- why
    risk TEXT NOT NULL,               -- JSON: the risk gate's exported state
    run_id TEXT,                      -- the run that stored it (NULL: resume-trading)
    updated_at INTEGER NOT NULL       -- wall clock ms
)"""
TABLE_SQL = (
    TRADING_STATE_SQL
    + """;
CREATE TABLE IF NOT EXISTS trading_state_log (
    profile TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT NOT NULL,
    source TEXT NOT NULL,             -- run | resume-trading
    run_id TEXT,
    created_at INTEGER NOT NULL,      -- wall clock ms
    portfolio TEXT NOT NULL DEFAULT 'main'
);
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id TEXT PRIMARY KEY,
    ts INTEGER NOT NULL,              -- event time of the last event it covers
    created_at INTEGER NOT NULL,      -- wall clock ms
    code_version TEXT NOT NULL,       -- the state is only read back by the same code
    marks TEXT NOT NULL,              -- JSON: how far each table had got
    state BLOB NOT NULL
);
"""
)

#: tables whose rows a checkpoint covers by rowid (their rows are only ever added)
_ROW_TABLES = ("funding", "excursions", "denials")
#: run kinds a checkpoint can resume (paper runs with a feed of their own)
RESUMABLE_STATUSES = ("running", "crashed", "interrupted")


def this_host() -> str:
    return socket.gethostname()


# -- crashed runs ---------------------------------------------------------------------
def mark_crashed(db: sqlite3.Connection) -> list[str]:
    """Mark every run still `running` as `crashed` (the caller holds the database lock,
    so their processes are gone); return their ids."""
    now = int(time.time() * 1000)
    rows = db.execute("SELECT run_id, pid, host FROM runs WHERE status='running'").fetchall()
    for run_id, pid, host in rows:
        who = f"process {pid} on {host}" if pid is not None else "its process"
        detail = f"{who} is gone (found by process {os.getpid()} at {iso_utc(now)[:19]}Z)"
        db.execute("UPDATE runs SET status='crashed', detail=? WHERE run_id=?", (detail, run_id))
    return [str(r[0]) for r in rows]


def not_started(db: sqlite3.Connection, run_id: str, status: str, detail: str) -> None:
    """The run (and its portfolios' runs) still `running` refused to start: `status`
    with `detail`, so the next bot does not call it `crashed` (its process did not die)."""
    db.execute(
        "UPDATE runs SET status=?, detail=? WHERE (run_id=? OR parent_run_id=?)"
        " AND status='running'",
        (status, detail, run_id, run_id),
    )


def process_gone(pid: int | None, host: str | None) -> bool:
    """True when the process of a `running` run is certainly gone (same host, no such
    pid): what a reader (report) can say without taking the lock."""
    if pid is None or host != this_host():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# -- trading state --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StoredTradingState:
    profile: str
    state: str
    detail: str
    risk: dict[str, Any]
    run_id: str | None
    updated_at: int
    portfolio: str = DEFAULT_PORTFOLIO


def load_trading_state(
    db: sqlite3.Connection, portfolio: str = DEFAULT_PORTFOLIO
) -> StoredTradingState | None:
    found = [state for state in load_trading_states(db) if state.portfolio == portfolio]
    return found[0] if found else None


def load_trading_states(db: sqlite3.Connection) -> list[StoredTradingState]:
    """Every portfolio's stored trading state, by portfolio id."""
    try:
        rows = db.execute(
            "SELECT profile, state, detail, risk, run_id, updated_at, portfolio"
            " FROM trading_state ORDER BY portfolio"
        ).fetchall()
    except sqlite3.OperationalError:  # read-only open of a database without the table
        return []
    states = []
    for profile, state, detail, risk, run_id, updated_at, portfolio in rows:
        risk = json_object(db, risk, f"the trading state of portfolio {portfolio}")
        states.append(
            StoredTradingState(profile, state, detail, risk, run_id, updated_at, portfolio)
        )
    return states


def json_object(db: sqlite3.Connection, text: str, what: str) -> dict[str, Any]:
    """A JSON object stored in the database (`what`, for the message). SQLite keeps no
    checksum of a row: a damaged byte in one reads back as text that is no longer such
    an object, and is refused here in one line rather than somewhere inside a restore."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        value = None
    if not isinstance(value, dict):
        raise damaged(getattr(db, "path", "the database"), what, "not a JSON object")
    return value


def save_trading_state(
    db: sqlite3.Connection,
    *,
    profile: str,
    state: str,
    detail: str,
    risk: dict[str, Any],
    run_id: str | None,
    source: str,
    portfolio: str = DEFAULT_PORTFOLIO,
) -> bool:
    """Store a portfolio's trading state (caller holds a transaction); a change of state
    or reason is also logged. Returns whether it changed."""
    now = int(time.time() * 1000)
    before = db.execute(
        "SELECT state, detail FROM trading_state WHERE portfolio=?", (portfolio,)
    ).fetchone()
    db.execute(
        "INSERT OR REPLACE INTO trading_state"
        " (portfolio, profile, state, detail, risk, run_id, updated_at) VALUES (?,?,?,?,?,?,?)",
        (portfolio, profile, state, detail, json.dumps(risk, sort_keys=True), run_id, now),
    )
    changed = before is None or tuple(before) != (state, detail)
    if changed:
        db.execute(
            "INSERT INTO trading_state_log"
            " (profile, state, detail, source, run_id, created_at, portfolio)"
            " VALUES (?,?,?,?,?,?,?)",
            (profile, state, detail, source, run_id, now, portfolio),
        )
    return changed


def state_origin(db: sqlite3.Connection, saved: StoredTradingState) -> str | None:
    """Who set a stored trading state: the run of the last change logged for its
    portfolio (None: resume-trading). A later run that only carried the state on stored
    it again unchanged, and logged nothing; the run that stored it when the log does
    not match (a database from before the log)."""
    row = db.execute(
        "SELECT state, detail, run_id FROM trading_state_log WHERE portfolio=?"
        " ORDER BY rowid DESC LIMIT 1",
        (saved.portfolio,),
    ).fetchone()
    if row is None or (row[0], row[1]) != (saved.state, saved.detail):
        return saved.run_id
    return None if row[2] is None else str(row[2])


def lifted_halt(db: sqlite3.Connection, saved: StoredTradingState, run_id: str) -> str | None:
    """The detail of the halt of run `run_id` that resume-trading lifted last (`saved`
    is that lift), None when the state before the lift was not such a halt."""
    rows = db.execute(
        "SELECT state, detail, source, run_id FROM trading_state_log WHERE portfolio=?"
        " ORDER BY rowid DESC LIMIT 2",
        (saved.portfolio,),
    ).fetchall()
    if len(rows) < 2 or tuple(rows[0][:3]) != (saved.state, saved.detail, "resume-trading"):
        return None
    state, detail, _, halted_by = rows[1]
    return str(detail) if state == "HALTED" and halted_by == run_id else None


def recent_order_times(
    db: sqlite3.Connection, kind: str, since_ms: int, portfolio: str | None = None
) -> list[int]:
    """When the runs of `kind` in this database (a live account's) created the orders
    that passed the risk gate (market and limit: the protective orders never do) after
    `since_ms`, oldest first; of one portfolio's, or of every portfolio (None)."""
    sql = (
        "SELECT o.ts FROM orders o JOIN runs r ON r.run_id = o.run_id WHERE r.kind=?"
        " AND o.ts>? AND o.order_type IN ('market', 'limit')"
    )
    args: tuple[object, ...] = (kind, since_ms)
    if portfolio is not None:
        sql, args = sql + " AND o.portfolio=?", (*args, portfolio)
    return [int(row[0]) for row in db.execute(sql + " ORDER BY o.ts", args)]


# -- checkpoints ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Checkpoint:
    run_id: str
    ts: int
    created_at: int
    code_version: str
    marks: dict[str, int]
    state: bytes


def table_marks(db: sqlite3.Connection, run_id: str, equity_block: int) -> dict[str, int]:
    """How far every table of `run_id` has got (called right after a flush)."""
    marks = {
        table: int(db.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM {table}").fetchone()[0])
        for table in (*_ROW_TABLES, "orders", "positions")
    }
    fills = db.execute("SELECT COALESCE(MAX(seq), 0) FROM fills WHERE run_id=?", (run_id,))
    marks["fills"] = int(fills.fetchone()[0])
    marks["equity_block"] = equity_block
    return marks


def write_checkpoint(
    db: sqlite3.Connection,
    run_id: str,
    *,
    ts: int,
    code_version: str,
    marks: dict[str, int],
    state: bytes,
) -> None:
    db.execute(
        "INSERT OR REPLACE INTO checkpoints VALUES (?,?,?,?,?,?)",
        (run_id, ts, int(time.time() * 1000), code_version, json.dumps(marks), state),
    )


def read_checkpoint(db: sqlite3.Connection, run_id: str) -> Checkpoint | None:
    row = db.execute(
        "SELECT run_id, ts, created_at, code_version, marks, state FROM checkpoints WHERE run_id=?",
        (run_id,),
    ).fetchone()
    if row is None:
        return None
    marks = json_object(db, row[4], "its checkpoint")
    return Checkpoint(row[0], row[1], row[2], row[3], marks, bytes(row[5]))


def drop_checkpoint(db: sqlite3.Connection, run_id: str) -> None:
    db.execute("DELETE FROM checkpoints WHERE run_id=?", (run_id,))


def rewind(
    db: sqlite3.Connection, run_id: str, checkpoint: Checkpoint | None, open_orders: list[Order]
) -> None:
    """Delete the rows `run_id` wrote after `checkpoint` (all of them without one) and
    write the rows of the orders open at the checkpoint as they were then (caller holds
    a transaction)."""
    marks = checkpoint.marks if checkpoint is not None else {}
    for table in (*_ROW_TABLES, "orders", "positions"):
        db.execute(f"DELETE FROM {table} WHERE run_id=? AND rowid>?", (run_id, marks.get(table, 0)))
    db.execute("DELETE FROM fills WHERE run_id=? AND seq>?", (run_id, marks.get("fills", 0)))
    db.execute(
        "DELETE FROM equity_blocks WHERE run_id=? AND block>=?",
        (run_id, marks.get("equity_block", 0)),
    )
    if checkpoint is None:
        db.execute("DELETE FROM checkpoints WHERE run_id=?", (run_id,))
    db.executemany(ORDERS_INSERT, [order_row(run_id, order) for order in open_orders])


def resumable_run(
    db: sqlite3.Connection,
    profile: str,
    kinds: tuple[str, ...],
    run_id: str | None,
    replay_of: str | None = None,
) -> tuple[str, str, str] | None:
    """(run_id, status, kind) of the run to resume: the given one, or the latest run of
    `profile` that did not end (crashed, interrupted); `replay_of`: the latest replay of
    that run's capture (a replay of another capture is no continuation of this one)."""
    if run_id is not None:
        row = db.execute(
            "SELECT run_id, status, kind FROM runs WHERE run_id=?", (run_id,)
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]), str(row[2]))
    marks = ",".join("?" * len(kinds))
    statuses = ",".join("?" * len(RESUMABLE_STATUSES))
    same = "" if replay_of is None else " AND json_extract(config_json, '$.run.replay_of')=?"
    row = db.execute(
        f"SELECT run_id, status, kind FROM runs WHERE profile=? AND kind IN ({marks})"
        f" AND status IN ({statuses}) AND parent_run_id IS NULL{same}"
        " ORDER BY created_at DESC, rowid DESC LIMIT 1",
        (profile, *kinds, *RESUMABLE_STATUSES, *(() if replay_of is None else (replay_of,))),
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]), str(row[2]))


def continue_run(db: sqlite3.Connection, run_id: str, detail: str) -> None:
    """The resumed run is `running` again, written by this process."""
    db.execute(
        "UPDATE runs SET status='running', detail=?, pid=?, host=?, end_ts=NULL WHERE run_id=?",
        (detail, os.getpid(), this_host(), run_id),
    )
