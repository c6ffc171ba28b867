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
            self._take(handle)
        except BlockingIOError:
            holder = _holder(handle)
            handle.close()
            raise self.busy(holder) from None
        except OSError as exc:  # a share without flock (ENOLCK), a full disk (ENOSPC)
            with contextlib.suppress(OSError):
                handle.close()  # also releases a flock taken before the pid's write failed
            raise self.unlockable(exc) from exc
        self._file = handle
        return self

    @staticmethod
    def _take(handle: IO[str]) -> None:
        """flock the open lock file without waiting and write our pid into it."""
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()

    def release(self) -> None:
        handle, self._file = self._file, None
        if handle is None:
            return
        with contextlib.suppress(OSError):
            handle.seek(0)
            handle.truncate()
        handle.close()  # closing the descriptor releases the flock

    def __enter__(self) -> Self:
        return self if self._file is not None else self.acquire()  # taken already

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


def _holder(handle: IO[str]) -> str:
    """The pid the lock's holder wrote into the lock file ('unknown' if unreadable)."""
    try:
        handle.seek(0)
        return handle.read().strip() or "unknown"
    except OSError:
        return "unknown"
