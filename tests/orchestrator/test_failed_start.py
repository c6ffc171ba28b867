"""A run that cannot start after its row was made (here: its journal file cannot be
written) says so in one line, leaves no row `running` for the next start to call
`crashed` (a false alert: the process did not die, it refused to start), and closes
what it had opened."""

import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import load_settings
from perps_bot.domain import PerpsBotError
from perps_bot.orchestrator.runner import run_bot_sync


def _settings(tmp_path: Path) -> Any:
    run = {"dev_fast": True, "symbols": ["BTC-PERP"], "log_dir": str(tmp_path / "logs"),
           "data_dir": str(tmp_path / "data"), "live_view": False}  # fmt: skip
    return load_settings("dev", {"run": run})


def _open_under(folder: Path) -> list[str]:
    fds = Path("/proc/self/fd")
    names = []
    for fd in fds.iterdir():
        with_target = os.readlink(fd) if fd.is_symlink() else ""
        if with_target.startswith(str(folder)):
            names.append(with_target)
    return names


def test_a_run_that_fails_to_start_is_failed_not_running(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    (tmp_path / "logs" / "events.jsonl").mkdir(parents=True)  # the journal cannot open
    with pytest.raises(PerpsBotError) as caught:
        run_bot_sync(settings, progress=False)
    assert "\n" not in str(caught.value) and "events.jsonl" in str(caught.value)
    assert _open_under(tmp_path) == []  # the store, the journal: closed
    with closing(sqlite3.connect(settings.database_path)) as db:
        rows = db.execute("SELECT status, detail FROM runs").fetchall()
    assert len(rows) == 1
    status, detail = rows[0]
    assert status == "failed"
    assert "events.jsonl" in (detail or "")


@pytest.mark.pure_python  # patches the engine's methods
def test_a_run_whose_first_journal_line_fails_ends_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal's `run_start` write raising (a full disk) ends the run `failed`,
    with its files closed, instead of skipping the run's end."""
    from perps_bot.monitoring import journal

    write = journal.Journal.write

    def full_disk(self: journal.Journal, kind: str, *args: Any, **kwargs: Any) -> None:
        if kind == "run_start":
            raise OSError(28, "No space left on device")
        write(self, kind, *args, **kwargs)

    monkeypatch.setattr(journal.Journal, "write", full_disk)
    settings = _settings(tmp_path)
    with pytest.raises(OSError, match="No space left"):
        run_bot_sync(settings, progress=False)
    assert _open_under(tmp_path) == []
    with closing(sqlite3.connect(settings.database_path)) as db:
        rows = db.execute("SELECT status, detail FROM runs").fetchall()
    assert [status for status, _ in rows] == ["failed"]
    assert "No space left" in rows[0][1]


def test_the_cli_says_it_in_one_line_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "logs" / "events.jsonl").mkdir(parents=True)
    env = os.environ | {"PERPS_BOT__RUN__LOG_DIR": str(tmp_path / "logs"),
                        "PERPS_BOT__RUN__DATA_DIR": str(tmp_path / "data")}  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "perps_bot", "--profile", "dev", "--dev-fast"],
                            cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120, check=False)  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "events.jsonl" in lines[0], result.stderr
