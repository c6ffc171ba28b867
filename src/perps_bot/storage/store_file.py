"""The SQLite file under a run store: opening it, refusing what is not ours,
upgrading an older schema, and transactions.

Everything here happens before (or around) any row is written, so it is kept apart
from the writers and readers of `RunStore`: a file that is not a run store, or one
from a newer perps-bot, fails here with one line, never halfway through a run.
"""

import sqlite3
from pathlib import Path
from types import TracebackType
from typing import Any

from perps_bot.storage import migrations
from perps_bot.storage.connection import (
    GuardedConnection,
    StoreError,
    StoreFault,
    set_write_mode,
)
from perps_bot.storage.schema import SCHEMA, SCHEMA_VERSION


class StoreFile:
    """An open run store database (WAL mode), at the current schema version."""

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        #: the fault (full disk, damaged page) a write transaction of this store failed
        #: with: every later one fails with it too, without writing (see Transaction)
        self._failed_write: StoreFault | None = None
        self.path = Path(path)
        if read_only and not self.path.exists():
            raise StoreError(f"no database at {self.path}: run the bot first")
        if not read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the database's folder {self.path.parent}: {_reason(exc)}"
                ) from exc
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, factory=GuardedConnection)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open database {self.path}: {_reason(exc)}") from exc
        try:
            self._require_run_store(read_only)
            version = self._stored_version()  # a newer file is refused before any write
            set_write_mode(self._db)
            if not read_only:
                self._db.executescript(SCHEMA)
            self._upgrade(version)
        except (sqlite3.DatabaseError, StoreError) as exc:
            self._db.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"cannot open database {self.path}: {_reason(exc)}") from exc

    def _stored_version(self) -> str | None:
        """The file's schema version (None: a new file, or one without it), checked
        before anything is written: a file from a newer version is refused as it is
        (creating our tables in it would bring back what that version renamed or
        dropped, or fail on a layout our indexes do not fit)."""
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        if "meta" not in tables:
            return None
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        value = None if row is None else str(row[0])
        if value is not None and value.isdigit() and int(value) > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer perps-bot (schema {value}, this one"
                f" reads {SCHEMA_VERSION}): upgrade perps-bot"
            )
        return value

    def _upgrade(self, stored: str | None) -> None:
        """Bring an older file (its schema version `stored`) to SCHEMA_VERSION (also when
        opened for reading: a report on a file written by an older version then works)."""
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        if "meta" not in tables:
            return  # read-only open of a file this program did not create: reads fail clearly
        if stored == str(SCHEMA_VERSION):
            return
        version = int(stored) if stored is not None and stored.isdigit() else 1
        with self.transaction():
            migrations.upgrade(self._db, version, tables)
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    def _require_run_store(self, read_only: bool) -> None:
        """The file is a run store (it has the `meta` table every version writes), or,
        to be written, a new or empty one. Checked before anything is written: another
        program's SQLite database is never given our tables, and a 0-byte file opened
        for reading is one line here, not 'no such table' at the first read."""
        rows = self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        tables = {row[0] for row in rows}
        if "meta" not in tables and (tables or read_only):
            raise StoreError(f"{self.path} is not a perps-bot database (no meta table)")

    @property
    def connection(self) -> sqlite3.Connection:
        """The connection, for the storage modules that keep their own tables
        (storage.durable); they use `transaction()` for writes."""
        return self._db

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read-only escape hatch for reports and tests."""
        return list(self._db.execute(sql, args).fetchall())

    def transaction(self) -> "Transaction":
        """A write transaction of this store (see `Transaction`)."""
        return Transaction(self)


class Transaction:
    """A write transaction. Once one failed for a fault of the file, the store's
    buffers are in no known state (the writers empty them as they write, and the
    rollback undid that), so writing more (the rows of the run's end, its status)
    would leave a file with a gap that looks complete: the file stays as of the
    last transaction that committed, and a paper run left `running` resumes from
    its last checkpoint."""

    def __init__(self, store: StoreFile) -> None:
        self._store = store
        self._db = store._db

    def __enter__(self) -> None:
        if self._store._failed_write is not None:
            raise self._store._failed_write
        self._db.execute("BEGIN")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self._db.execute("COMMIT")
        except StoreFault as fault:
            exc = fault
            raise
        finally:
            if exc is not None and self._db.in_transaction:  # SQLite may have rolled back
                self._db.execute("ROLLBACK")
            if isinstance(exc, StoreFault):
                self._store._failed_write = exc


def _reason(exc: BaseException) -> str:
    """The cause of an OSError or sqlite3 error, for a one-line message."""
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc)
