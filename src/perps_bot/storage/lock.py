"""One bot writes a database at a time (SPEC 9).

An OS file lock (`flock`) on `<database>.lock`, taken without waiting: the kernel
releases it when the holder exits, also on SIGKILL, so a stale lock cannot outlive
its process (no pid files to clean up by hand). The holder writes its pid into the
file so a refused bot can name it. Readers (`report`) never take it: SQLite's WAL lets
them read while a bot writes.
"""

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import IO

from perps_bot.domain import PerpsBotError


class DatabaseBusy(PerpsBotError):
    """Another bot holds the database, or its lock file cannot be made; one-line
    message (CLI exit 2)."""


class DatabaseLock:
    """Exclusive write access to one database for this process (context manager)."""

    def __init__(self, database: Path) -> None:
        self.database = database
        # next to the file itself: a bot given a link to it takes the same lock
        real = database.resolve()
        self.path = real.with_name(real.name + ".lock")
        self._file: IO[str] | None = None

    def acquire(self) -> "DatabaseLock":
        """Take the lock or raise DatabaseBusy naming the pid that holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.path.open("a+", encoding="utf-8")
        except OSError as exc:
            raise DatabaseBusy(f"cannot lock database {self.database}: {exc}") from exc
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise DatabaseBusy(
                f"database {self.database} is in use by another bot (pid {holder}): one bot"
                " writes a database at a time; stop it or use another --db"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        handle, self._file = self._file, None
        if handle is None:
            return
        with contextlib.suppress(OSError):
            handle.seek(0)
            handle.truncate()
        handle.close()  # closing the descriptor releases the flock

    def __enter__(self) -> "DatabaseLock":
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
