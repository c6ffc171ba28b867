"""The session server's sessions (SPEC 11): what each was asked to run (the request,
as JSON), the run it became and where it stands, so a server started again goes on
with the sessions that were running when it stopped or was killed.

A session's run is an ordinary run (its portfolios child runs); this table only ties
the API's session id to it. Statuses: `starting` (no run yet), `running`, and the
ends `completed`, `stopped` (by the API), `failed` (and `interrupted`, `crashed`: a
run's). One stored with another (edited by hand) is read as damaged.
"""

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from perps_bot.domain import short, time_in_range

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,      -- wall clock ms
    request TEXT NOT NULL,            -- JSON: the POST /api/sessions body, as validated
    run_id TEXT,                      -- NULL until its run exists
    status TEXT NOT NULL,             -- starting | running | completed | stopped | failed
    detail TEXT,
    paused TEXT NOT NULL DEFAULT '[]', -- JSON: ids of the portfolios paused by the API
    flattens TEXT NOT NULL DEFAULT '{}', -- JSON: flattens the API took, by portfolio id
    flattened TEXT NOT NULL DEFAULT '{}', -- JSON: of those, the ones whose closes were made
    prompts TEXT NOT NULL DEFAULT '{}' -- JSON: the API's prompt, by portfolio: [text, label]
);
"""

#: sessions a restarted server goes on with
UNFINISHED = ("starting", "running")
#: every status a session is stored with (an ended one's: its run's, or `stopped`)
STATUSES = (*UNFINISHED, "completed", "stopped", "failed", "interrupted", "crashed")


@dataclass(frozen=True, slots=True)
class SessionRecord:
    session_id: str
    created_at: int
    request: str
    run_id: str | None
    status: str
    detail: str | None
    paused: tuple[str, ...] = ()
    flattens: dict[str, int] = field(default_factory=dict)
    prompts: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: of the flattens taken, those whose closes were made (a portfolio it does not name:
    #: all of them, as a session stored before it was kept)
    flattened: dict[str, int] = field(default_factory=dict)
    #: why a column of controls cannot be read (edited by hand, another version's):
    #: the session cannot go on with them (None: every column reads)
    damaged: str | None = None


def add_session(db: sqlite3.Connection, session_id: str, request: str) -> SessionRecord:
    record = SessionRecord(session_id, int(time.time() * 1000), request, None, "starting", None)
    db.execute(
        "INSERT INTO sessions (session_id, created_at, request, run_id, status, detail)"
        " VALUES (?,?,?,?,?,?)",
        (record.session_id, record.created_at, record.request, None, record.status, None),
    )
    return record


def set_controls(
    db: sqlite3.Connection,
    session_id: str,
    paused: list[str],
    flattens: dict[str, int],
    prompts: dict[str, tuple[str, str]],
    flattened: dict[str, int],
) -> None:
    """The portfolios the API has paused (a pause, a flatten), how many flattens it has
    taken of each (and of those, how many made their closes) and the prompts it gave
    their planners, kept before the API answers, for a restart: a live session goes on
    as a new run, with no checkpoint to hold them, and a paper session goes on from a
    checkpoint that may predate them (server.kept_controls applies them again)."""
    db.execute(
        "UPDATE sessions SET paused=?, flattens=?, prompts=?, flattened=? WHERE session_id=?",
        (json.dumps(paused), json.dumps(flattens, sort_keys=True),
         json.dumps(prompts, sort_keys=True), json.dumps(flattened, sort_keys=True),
         session_id),
    )  # fmt: skip


def set_flattened(db: sqlite3.Connection, session_id: str, flattened: dict[str, int]) -> None:
    """How many of the flattens taken have made their closes, by portfolio id (a live
    session's run, after the batch that made them)."""
    db.execute(
        "UPDATE sessions SET flattened=? WHERE session_id=?",
        (json.dumps(flattened, sort_keys=True), session_id),
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
        "SELECT session_id, created_at, request, run_id, status, detail, paused, flattens,"
        " prompts, flattened FROM sessions ORDER BY created_at, rowid"
    ).fetchall()
    return [_record(row) for row in rows]


def _record(row: tuple[Any, ...]) -> SessionRecord:
    """The record of `row`; a control column that does not read as what it holds is
    left empty (a time: 0) and named in `damaged` (the request is the server's to
    check)."""
    damaged: list[str] = []

    def column(name: str, index: int, read: Callable[[Any], Any], empty: Any) -> Any:
        try:
            value = json.loads(row[index])
        except (TypeError, ValueError, RecursionError):  # NULL, not JSON, nested too deep
            damaged.append(f"its stored {name}: not JSON")
            return empty
        try:
            return read(value)
        except ValueError as exc:  # JSON of another shape
            damaged.append(f"its stored {name}: {exc}")
            return empty

    session_id, created_at, request, run_id, status, detail = row[:6]
    if type(created_at) is not int or not time_in_range(created_at):  # shown as a date
        damaged.append("its stored created_at: not a time in ms since 1970")
        created_at = 0
    if status not in STATUSES:  # edited by hand ('Running'): read as unfinished, so the
        # server ends it failed saying why (else shown as it stands, never going on)
        damaged.append(f"its stored status: {short(repr(status))} is not a session status"
                       f" ({', '.join(STATUSES)})")  # fmt: skip
        status = "starting"
    return SessionRecord(
        session_id, created_at, request, run_id, status, detail,
        column("paused", 6, _ids, ()), column("flattens", 7, _counts, {}),
        column("prompts", 8, _prompts, {}), column("flattened", 9, _counts, {}),
        "; ".join(damaged) or None,
    )  # fmt: skip


def _ids(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a JSON list of portfolio ids")
    return tuple(value)


def _counts(value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value.values()
    ):
        raise ValueError("expected a JSON object of counts by portfolio id")
    return {str(pid): n for pid, n in value.items()}


def _prompts(value: Any) -> dict[str, tuple[str, str]]:
    if not isinstance(value, dict) or not all(
        isinstance(v, list) and len(v) == 2 and all(isinstance(t, str) for t in v)
        for v in value.values()
    ):
        raise ValueError("expected a JSON object of [text, label] by portfolio id")
    return {str(pid): (text, label) for pid, (text, label) in value.items()}
