"""Issue 11: one bot writes a database at a time (measured on main: two bots on one
database ran side by side without a word, interleaving their logs)."""

from pathlib import Path

import pytest

from perps_bot.storage.lock import DatabaseLock
from tests.badinput.harness import run_main
from tests.durable.helpers import cli, kill9, runs, start, wait_for


@pytest.mark.integration
def test_a_second_bot_on_the_same_database_is_refused_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    first = start("--profile", "dev", "--duration", "120s", "--db", str(db), tmp=tmp_path)
    try:
        wait_for(lambda: len(runs(db)) == 1, timeout=60, what="the first bot's run")
        second = cli(
            "--profile", "dev", "--dev-fast", "--duration", "1h", "--db", str(db), tmp=tmp_path
        )
        assert second.returncode == 2, (second.stdout, second.stderr)
        lines = [line for line in second.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, second.stderr
        assert str(first.pid) in lines[0] and str(db) in lines[0]
        assert len(runs(db)) == 1, "the refused bot writes nothing"
        trading = cli("resume-trading", "--db", str(db), tmp=tmp_path)
        assert trading.returncode == 2 and str(first.pid) in trading.stderr
        # reading is never refused
        report = cli("report", "--db", str(db), tmp=tmp_path)
        assert report.returncode == 0, report.stderr
    finally:
        kill9(first)
    # the OS released the lock of the killed bot: the next one runs
    after = cli("--profile", "dev", "--dev-fast", "--duration", "1h", "--db", str(db), tmp=tmp_path)
    assert after.returncode == 0, after.stderr


def test_a_bot_on_a_link_to_a_database_in_use_is_refused(tmp_path: Path) -> None:
    """The lock file was named after the path given: a bot given a symbolic link to
    a database another bot writes took a lock of its own and wrote the same file."""
    real = tmp_path / "data" / "perps_bot.sqlite"
    real.parent.mkdir()
    link = tmp_path / "link.sqlite"
    link.symlink_to(real)
    env = {"PERPS_BOT__RUN__LOG_DIR": str(tmp_path / "logs")}
    with DatabaseLock(real):  # the other bot
        second = run_main(
            ["--profile", "dev", "--dev-fast", "--duration", "1h", "--db", str(link)], env
        )
    assert second.code == 2, second
    assert "in use by another bot" in second.err and second.err.count("\n") == 1, second.err
    assert not real.exists(), "the refused bot wrote the database"
