"""A database written by a newer perps-bot is refused before anything is written to
it. Measured on main: the bot first created every table of its own schema that the
file lacked (a newer version's renamed or dropped tables came back, empty), and only
then refused the file; a newer table layout our indexes did not fit was refused with
SQLite's 'no such column' instead of saying the file is newer."""

import sqlite3
from pathlib import Path

from perps_bot.storage import RunStore
from tests.badinput.harness import run_main

RUN = ["--profile", "dev", "--dev-fast", "--duration", "1h"]


def _newer_file(path: Path) -> list[tuple[str, str]]:
    """A file of schema 99 that moved `sessions` and `fills` to other tables; its
    schema as (name, sql) rows."""
    RunStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
        db.execute("DROP TABLE sessions")
        db.execute("DROP TABLE fills")
        db.execute("CREATE TABLE fills (run_id TEXT, fill BLOB)")  # no ts: our index fails
        rows = db.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
    return [(str(name), str(sql)) for name, sql in rows]


def test_a_newer_file_is_refused_by_the_bot_without_a_write(tmp_path: Path) -> None:
    db = tmp_path / "new.sqlite"
    before = _newer_file(db)
    out = run_main([*RUN, "--db", str(db)], {"PERPS_BOT__RUN__LOG_DIR": str(tmp_path / "logs")})
    assert out.code == 2 and out.err.count("\n") == 1, out
    assert "newer perps-bot (schema 99" in out.err, out.err
    with sqlite3.connect(db) as conn:
        after = conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
    assert [(str(n), str(s)) for n, s in after] == before, "the newer file was changed"


def test_a_newer_file_is_refused_by_report(tmp_path: Path) -> None:
    db = tmp_path / "new.sqlite"
    _newer_file(db)
    out = run_main(["report", "--db", str(db)])
    assert out.code == 2 and out.err.count("\n") == 1, out
    assert "newer perps-bot (schema 99" in out.err, out.err
