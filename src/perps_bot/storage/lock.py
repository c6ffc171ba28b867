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
from typing import IO, Self

from perps_bot.domain import PerpsBotError


class DatabaseBusy(PerpsBotError):
    """Another bot holds the database, or its lock file cannot be made; one-line
    message (CLI exit 2)."""


class FileLock:
    """Exclusive access to one file for this process (context manager): the flock of
    `<file>.lock`; subclasses say what a refusal means."""

    def __init__(self, target: Path) -> None:
        self.target = target
        # next to the file itself: a process given a link to it takes the same lock
        real = target.resolve()
        self.path = real.with_name(real.name + ".lock")
        self._file: IO[str] | None = None

    def busy(self, holder: str) -> PerpsBotError:
        """The one-line error when process `holder` (a pid, or 'unknown') has it."""
        return PerpsBotError(f"{self.target} is in use by another process (pid {holder})")

    def unlockable(self, exc: OSError) -> PerpsBotError:
        return PerpsBotError(f"cannot lock {self.target}: {exc}")

    def acquire(self) -> Self:
        """Take the lock or raise `busy(...)` naming the pid that holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.path.open("a+", encoding="utf-8")
        except OSError as exc:
            raise self.unlockable(exc) from exc
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise self.busy(holder) from None
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

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class DatabaseLock(FileLock):
    """Exclusive write access to one database for this process (context manager)."""

    def __init__(self, database: Path) -> None:
        super().__init__(database)
        self.database = database

    def busy(self, holder: str) -> PerpsBotError:
        return DatabaseBusy(
            f"database {self.database} is in use by another bot (pid {holder}): one bot"
            " writes a database at a time; stop it or use another --db"
        )

    def unlockable(self, exc: OSError) -> PerpsBotError:
        return DatabaseBusy(f"cannot lock database {self.database}: {exc}")
