"""The entries of live flips held back for their close (orchestrator.held_entries), kept
in the run store so that a bot that dies before the close is done does not lose them
(SPEC 9): the next start sends each once, or says why not.

One row per symbol under a scope (`profile/portfolio`, like the trading state: the
account outlives runs), written, committed, when the entry is held back: the order as
prepared (its own client id, never sent) and the client ids of the closing orders it
waits for. A row whose client id has an order row or a denial (in any run) was decided:
sent (its intent is committed before its request leaves) or refused. The table is
created on first use.
"""

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

_TABLE = """CREATE TABLE IF NOT EXISTS held_entries (
    scope TEXT NOT NULL,                   -- profile/portfolio
    symbol TEXT NOT NULL,
    client_id TEXT NOT NULL,               -- the entry's own (never sent while held)
    entry TEXT NOT NULL,                   -- JSON: the order as prepared
    closes TEXT NOT NULL,                  -- JSON: client ids of the close's orders
    run_id TEXT NOT NULL,                  -- the run that held it back
    created_at INTEGER NOT NULL,           -- wall clock ms
    PRIMARY KEY (scope, symbol)
)"""


@dataclass(frozen=True, slots=True)
class StoredEntry:
    symbol: str
    client_id: str
    entry: dict[str, Any]
    closes: tuple[str, ...]
    run_id: str
    created_at: int


def create(db: sqlite3.Connection) -> None:
    db.execute(_TABLE)


def put(
    db: sqlite3.Connection,
    scope: str,
    entry: dict[str, Any],
    closes: list[str],
    run_id: str,
) -> None:
    """The symbol's held entry (`entry["symbol"]`), replacing the one before it."""
    db.execute(
        "INSERT OR REPLACE INTO held_entries VALUES (?,?,?,?,?,?,?)",
        (scope, entry["symbol"], entry["client_id"], json.dumps(entry, sort_keys=True),
         json.dumps(sorted(closes)), run_id, int(time.time() * 1000)),
    )  # fmt: skip


def delete(db: sqlite3.Connection, scope: str, symbol: str, client_id: str) -> None:
    db.execute(
        "DELETE FROM held_entries WHERE scope=? AND symbol=? AND client_id=?",
        (scope, symbol, client_id),
    )


def load(db: sqlite3.Connection, scope: str) -> list[StoredEntry]:
    """The scope's rows, by symbol."""
    rows = db.execute(
        "SELECT symbol, client_id, entry, closes, run_id, created_at FROM held_entries"
        " WHERE scope=? ORDER BY symbol",
        (scope,),
    ).fetchall()
    return [StoredEntry(str(s), str(c), json.loads(e), tuple(json.loads(cl)), str(r), int(t))
            for s, c, e, cl, r, t in rows]  # fmt: skip


def decided(db: sqlite3.Connection, client_id: str) -> bool:
    """Whether the entry `client_id` was sent (an order row) or refused (a denial)."""
    sent = db.execute("SELECT 1 FROM orders WHERE client_id=? LIMIT 1", (client_id,))
    if sent.fetchone() is not None:
        return True
    denied = db.execute("SELECT 1 FROM denials WHERE correlation_id=? LIMIT 1", (client_id,))
    return denied.fetchone() is not None
