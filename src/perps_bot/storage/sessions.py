"""The session server's sessions (SPEC 11): what each was asked to run (the request,
as JSON), the run it became and where it stands, so a server started again goes on
with the sessions that were running when it stopped or was killed.

A session's run is an ordinary run (its portfolios child runs); this table only ties
the API's session id to it. Statuses: `starting` (no run yet), `running`, and the
ends `completed`, `stopped` (by the API), `failed`.
"""

import json
import sqlite3
import time
from dataclasses import dataclass

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,      -- wall clock ms
    request TEXT NOT NULL,            -- JSON: the POST /api/sessions body, as validated
    run_id TEXT,                      -- NULL until its run exists
    status TEXT NOT NULL,             -- starting | running | completed | stopped | failed
    detail TEXT,
    paused TEXT NOT NULL DEFAULT '[]' -- JSON: ids of the portfolios paused by the API
);
"""

#: sessions a restarted server goes on with
UNFINISHED = ("starting", "running")


@dataclass(frozen=True, slots=True)
class SessionRecord:
    session_id: str
    created_at: int
    request: str
    run_id: str | None
    status: str
    detail: str | None
    paused: tuple[str, ...] = ()


def add_session(db: sqlite3.Connection, session_id: str, request: str) -> SessionRecord:
    record = SessionRecord(session_id, int(time.time() * 1000), request, None, "starting", None)
    db.execute(
        "INSERT INTO sessions (session_id, created_at, request, run_id, status, detail)"
        " VALUES (?,?,?,?,?,?)",
        (record.session_id, record.created_at, record.request, None, record.status, None),
    )
    return record


def set_paused(db: sqlite3.Connection, session_id: str, portfolios: list[str]) -> None:
    """The portfolios the API has paused (a pause, a flatten), kept for a restart: a live
    session goes on as a new run, with no checkpoint to hold them."""
    db.execute(
        "UPDATE sessions SET paused=? WHERE session_id=?", (json.dumps(portfolios), session_id)
    )


def set_session_run(db: sqlite3.Connection, session_id: str, run_id: str) -> None:
    db.execute(
        "UPDATE sessions SET run_id=?, status='running' WHERE session_id=?", (run_id, session_id)
    )


def end_session(db: sqlite3.Connection, session_id: str, status: str, detail: str | None) -> None:
    db.execute(
        "UPDATE sessions SET status=?, detail=? WHERE session_id=?", (status, detail, session_id)
    )


def load_sessions(db: sqlite3.Connection) -> list[SessionRecord]:
    """Every session, oldest first."""
    rows = db.execute(
        "SELECT session_id, created_at, request, run_id, status, detail, paused FROM sessions"
        " ORDER BY created_at, rowid"
    ).fetchall()
    return [
        SessionRecord(row[0], row[1], row[2], row[3], row[4], row[5], tuple(json.loads(row[6])))
        for row in rows
    ]
