"""The run store's SQLite connection: a fault of the FILE becomes one line naming it.

SQLite only finds a damaged page when a statement reaches it, a full disk when a
write needs a page, a read-only file when it first writes: at any read or write of a
run, long after the file was opened and checked (store_file). Those errors are the
user's file or disk, not a bug, so every statement and every row fetched through the
store's connection turns them into a `StoreFault` that names the database and says
what to do ("database disk image is malformed" alone names neither). Errors of the SQL
itself (no such table, constraints) are left as they are: code relies on some, and the
others are bugs.
"""

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn

from perps_bot.domain import PerpsBotError


class StoreError(PerpsBotError):
    """The database cannot be opened or read; one-line message."""


class StoreFault(StoreError):
    """The database FILE or its disk failed a statement (damaged, full, not writable)."""


#: what to do about a damaged file or row
RESTORE = "restore a backup or use another --db"
#: SQLite's primary result codes for a fault of the file or the disk, and what to say
_DAMAGED = "the file is damaged ({}): " + RESTORE
_FILE_FAULTS = {
    sqlite3.SQLITE_CORRUPT: _DAMAGED,
    sqlite3.SQLITE_NOTADB: _DAMAGED,
    sqlite3.SQLITE_FULL: "the disk is full ({}): free some space (what was written before is kept)",
    sqlite3.SQLITE_IOERR: "cannot read or write the file ({})",
    sqlite3.SQLITE_READONLY: "cannot write the file ({})",
    sqlite3.SQLITE_CANTOPEN: "cannot open the file ({})",
    sqlite3.SQLITE_PERM: "cannot write the file ({})",
    sqlite3.SQLITE_BUSY: "another program holds it ({})",
    sqlite3.SQLITE_LOCKED: "another program holds it ({})",
}


def set_write_mode(db: sqlite3.Connection) -> None:
    """How every connection to a run store writes: WAL (readers never wait for the
    writer) and NORMAL sync (a commit waits for no disk flush: a power cut may lose the
    last commits, never damage the file). The store's own connection and its writer
    process's (storage.writer_process) both set it."""
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")


def damaged(path: object, what: str, why: str) -> StoreError:
    """A stored row of database `path` (`what`) that no longer reads as what was
    written (`why`): SQLite keeps no checksum of a row, so a damaged byte shows only
    when the row is decoded."""
    return StoreError(f"database {path}: {what} is damaged ({why}): {RESTORE}")


def file_fault(path: Path | str, exc: sqlite3.Error) -> StoreFault | None:
    """The `StoreFault` for `exc` if it is a fault of the database file or its disk."""
    code = getattr(exc, "sqlite_errorcode", None)
    text = _FILE_FAULTS.get(code & 0xFF) if isinstance(code, int) else None
    if text is None:
        return None
    return StoreFault(f"database {path}: {text.format(exc)}")


def _reraise(path: Path, exc: sqlite3.Error) -> NoReturn:
    fault = file_fault(path, exc)
    if fault is None:
        raise exc
    raise fault from exc


class GuardedCursor(sqlite3.Cursor):
    """A cursor whose statements and fetches report file faults in one line."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        super().__init__(connection)
        self.path = Path(getattr(connection, "path", "the database"))

    def execute(self, sql: str, parameters: Any = (), /) -> "GuardedCursor":
        try:
            super().execute(sql, parameters)
        except sqlite3.Error as exc:
            _reraise(self.path, exc)
        return self

    def executemany(self, sql: str, seq: Iterable[Any], /) -> "GuardedCursor":
        try:
            super().executemany(sql, seq)
        except sqlite3.Error as exc:
            _reraise(self.path, exc)
        return self

    def executescript(self, script: str, /) -> "GuardedCursor":
        try:
            super().executescript(script)
        except sqlite3.Error as exc:
            _reraise(self.path, exc)
        return self

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.Error as exc:
            _reraise(self.path, exc)

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.Error as exc:
            _reraise(self.path, exc)

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.Error as exc:
            _reraise(self.path, exc)


class GuardedConnection(sqlite3.Connection):
    """`sqlite3.connect(..., factory=GuardedConnection)`: every statement run through
    it (`execute`, `executemany`, `executescript`) uses a `GuardedCursor`."""

    def __init__(self, database: Path | str, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self.path = Path(database)
        #: called before every statement and cursor: a store whose batches a writer
        #: process writes (storage.writer_process) waits for them first, so a read sees
        #: every row and the two connections never wait on each other's lock
        self.before_statement: Callable[[], None] | None = None

    def cursor(self, factory: Any = sqlite3.Cursor) -> Any:
        if self.before_statement is not None:
            self.before_statement()
        return super().cursor(factory)

    def _guarded(self) -> GuardedCursor:
        cursor: GuardedCursor = self.cursor(GuardedCursor)
        return cursor

    def execute(self, sql: str, parameters: Any = (), /) -> GuardedCursor:
        return self._guarded().execute(sql, parameters)

    def executemany(self, sql: str, seq: Iterable[Any], /) -> GuardedCursor:
        return self._guarded().executemany(sql, seq)

    def executescript(self, script: str, /) -> GuardedCursor:
        return self._guarded().executescript(script)
