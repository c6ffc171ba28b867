"""A command run as its own process (the console script, `python -m perps_bot`) ends
without the interpreter's last collection (its objects are frozen at exit), and what it
wrote is still complete: the store closed (no write-ahead log left beside it), the
journal ending with the run's end, the log with the run's last line. A test calling
`main` in its own process keeps its collector."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA

#: a reference cycle with a finalizer, alive until the interpreter tears `__main__` down:
#: the exit's collection runs the finalizer, unless the objects were frozen before it
_CYCLE_THEN_MAIN = """
import os, sys
class Cycle:
    def __del__(self, write=os.write):
        write(2, b"finalized\\n")
held = Cycle()
held.me = held
from perps_bot.cli.app import main
sys.argv = ["perps-bot", "--version"]
main({argv})
"""


@pytest.mark.parametrize(("argv", "collected"), [("", False), ("['--version']", True)])
def test_only_the_process_s_own_command_skips_the_exit_collection(
    argv: str, collected: bool
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CYCLE_THEN_MAIN.format(argv=argv)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("perps-bot ")
    assert ("finalized" in done.stderr) == collected


@pytest.mark.integration
def test_a_backtest_process_leaves_its_store_journal_and_log_complete(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    data = SHARED_DATA / "futures" / "XRP_USDT_USDT-5m-futures.feather"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPS_BOT__")}
    command = [
        sys.executable, "-m", "perps_bot", "backtest", "--profile", "dev",
        "--data", str(data), "--symbol", "XRP-PERP", "--strategy", "sma_cross",
        "--param", "fast=5", "--param", "slow=20", "--order-size", "100",
        "--db", str(db), "--no-progress",
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.glob("runs.sqlite*")) == [
        "runs.sqlite",
        "runs.sqlite.lock",
    ]  # closed: the write-ahead log was folded into the file and removed
    with sqlite3.connect(db) as conn:
        (run_id, status), *_ = conn.execute("SELECT run_id, status FROM runs").fetchall()
        fills = conn.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
    assert status == "completed"
    assert fills > 0
    journal = (tmp_path / "logs" / "events.backtest.jsonl").read_text().splitlines()
    last = json.loads(journal[-1])
    assert (last["type"], last["run_id"], last["status"]) == ("run_end", run_id, "completed")
    log = (tmp_path / "logs" / "perps_bot.backtest.log").read_text().splitlines()
    assert f"run {run_id} end (completed)" in log[-1]
