"""Stored drift reports (SPEC 14): the summary of each `perps-bot drift` of a live run
against a replay, kept in the run's database so `promote --to prod` can check the
canary run's drift without replaying anything. Its own table, created on first use."""

import json
import time
from typing import Any

from perps_bot.storage.store import RunStore

_TABLE = """CREATE TABLE IF NOT EXISTS drift_reports (
    live_run TEXT NOT NULL, replay_run TEXT NOT NULL, created_at INTEGER NOT NULL,
    fill_model TEXT NOT NULL, summary TEXT NOT NULL)"""


def save_drift(
    store: RunStore,
    live_run: str,
    replay_run: str,
    fill_model: dict[str, Any],
    summary: dict[str, Any],
) -> None:
    with store.transaction():
        store.connection.execute(_TABLE)
        store.connection.execute(
            "INSERT INTO drift_reports VALUES (?, ?, ?, ?, ?)",
            (live_run, replay_run, int(time.time() * 1000),
             json.dumps(fill_model, sort_keys=True), json.dumps(summary, sort_keys=True)),
        )  # fmt: skip


def latest_drift(
    store: RunStore, live_run: str, *, measured_from: int | None = None
) -> dict[str, Any] | None:
    """The summary of the run's latest stored drift report, None when it has none (or,
    with `measured_from`, none made at or after that time, epoch ms)."""
    exists = store.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='drift_reports'"
    )
    if not exists:
        return None
    rows = store.execute(
        "SELECT summary FROM drift_reports WHERE live_run=? AND created_at>=?"
        " ORDER BY created_at DESC, rowid DESC LIMIT 1",
        (live_run, measured_from or 0),
    )
    return json.loads(rows[0][0]) if rows else None
