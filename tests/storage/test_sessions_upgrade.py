"""A session server's database from before schema 8 (no `flattened` column): it is
upgraded when opened, and its sessions read back as having carried out every flatten
they took (what that server did: a restart sends none of them again)."""

import sqlite3
from pathlib import Path

from perps_bot.storage import RunStore
from perps_bot.storage import sessions as table
from perps_bot.storage.migrations import SCHEMA_VERSION


def test_a_schema_7_sessions_table_gains_the_flattens_carried_out(tmp_path: Path) -> None:
    path = tmp_path / "server.sqlite"
    RunStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE sessions DROP COLUMN flattened")
        db.execute("UPDATE meta SET value='7' WHERE key='schema_version'")
        db.execute("INSERT INTO sessions (session_id, created_at, request, run_id, status,"
                   " flattens) VALUES ('s1', 1, '{}', 'r1', 'running', '{\"a\": 2}')")  # fmt: skip
    with RunStore(path) as store:
        (record,) = table.load_sessions(store.connection)
        version = store.execute("SELECT value FROM meta WHERE key='schema_version'")
    assert (record.flattens, record.flattened) == ({"a": 2}, {})
    assert version == [(str(SCHEMA_VERSION),)] and SCHEMA_VERSION == 9
