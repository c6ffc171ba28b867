"""The database lock on a file system that refuses it: a network share without
`flock` (ENOLCK), a full disk when the holder's pid is written. Measured on main: both
were an internal error with a traceback (only a lock held by another bot was caught)."""

import errno
import fcntl
from pathlib import Path
from typing import Any

import pytest

from perps_bot.storage.lock import DatabaseLock
from tests.badinput.harness import run_main

RUN = ["--profile", "dev", "--dev-fast", "--duration", "1h"]


def _refused_in_one_line(db: Path, tmp_path: Path) -> str:
    outcome = run_main([*RUN, "--db", str(db)], {"PERPS_BOT__RUN__LOG_DIR": str(tmp_path / "logs")})
    assert outcome.code == 2, outcome
    assert outcome.err.count("\n") == 1 and "internal error" not in outcome.err, outcome.err
    assert f"cannot lock database {db}" in outcome.err, outcome.err
    assert not db.exists(), "the bot wrote a database it could not lock"
    return outcome.err


def test_a_lock_the_file_system_refuses_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_locks(fd: Any, operation: int) -> None:  # an NFS share without a lock daemon
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    err = _refused_in_one_line(tmp_path / "db.sqlite", tmp_path)
    assert "No locks available" in err


def test_a_full_disk_when_the_lock_is_taken_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    (tmp_path / "db.sqlite.lock").symlink_to("/dev/full")  # its writes fail (ENOSPC)
    _refused_in_one_line(db, tmp_path)
    DatabaseLock(tmp_path / "other.sqlite").acquire().release()  # nothing else held


def test_a_lock_that_cannot_be_taken_leaves_nothing_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock file's handle is closed when taking the lock fails."""
    opened: list[Any] = []
    real_open = Path.open

    def tracked(self: Path, *args: Any, **kwargs: Any) -> Any:
        handle = real_open(self, *args, **kwargs)
        opened.append(handle)
        return handle

    def no_locks(fd: Any, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(Path, "open", tracked)
    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(Exception, match="cannot lock database"):
        DatabaseLock(tmp_path / "db.sqlite").acquire()
    assert opened and all(handle.closed for handle in opened)
