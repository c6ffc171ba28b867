"""A damaged database or a full disk gets one line and exit 2, and keeps what was written.

Measured on main: a zeroed page of the `runs` table made `report`, `runs` and a run end
in "internal error: DatabaseError: database disk image is malformed" (exit 1); a full
disk mid-run ended in "internal error: OperationalError: cannot rollback - no transaction
is active"; a full log disk in "internal error: OSError: [Errno 27] File too large"; a
damaged checkpoint or stored state in UnpicklingError, JSONDecodeError or TypeError.
"""

import pickle
import resource
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perps_bot.storage import store_file
from perps_bot.storage.connection import GuardedConnection
from tests.badinput.harness import Outcome, assert_bad_input, run_main
from tests.conftest import REPO
from tests.durable.helpers import env, fills, runs

RUN = ["--profile", "dev", "--dev-fast", "--seed", "5", "--param", "fast=3", "--param", "slow=8"]


def _run(db: Path, duration: str, *extra: str) -> Outcome:
    return run_main([*RUN, "--duration", duration, "--db", str(db), *extra], timeout=120)


@pytest.fixture
def logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PERPS_BOT__RUN__LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.chdir(tmp_path)
    yield tmp_path / "logs"


def _zero_page_of(db: Path, table: str) -> None:
    """Zero the root page of `table` (what a bad sector or a torn copy leaves)."""
    with sqlite3.connect(db) as con:
        (page,) = con.execute(
            "SELECT rootpage FROM sqlite_master WHERE name=?", (table,)
        ).fetchone()
        size = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    with db.open("r+b") as handle:
        handle.seek((page - 1) * size)
        handle.write(b"\0" * size)


@pytest.mark.parametrize(
    "command",
    [["report"], ["runs", "list"], ["runs", "compare", "latest", "latest"], RUN[:3]],
    ids=lambda c: " ".join(c[:2]),
)
def test_a_damaged_page_is_one_line_naming_the_file(
    tmp_path: Path, logs: Path, command: list[str]
) -> None:
    db = tmp_path / "runs.sqlite"
    assert _run(db, "1h").code == 0
    _zero_page_of(db, "runs")
    line = assert_bad_input(run_main([*command, "--db", str(db)]), command)
    assert str(db) in line and "damaged" in line, line


@pytest.mark.parametrize(("column", "keep"), [("ts", 13), ("equity", 8)])
@pytest.mark.parametrize("command", [["report"], ["runs", "list"]], ids=lambda c: " ".join(c[:2]))
def test_a_damaged_equity_block_is_one_line(
    tmp_path: Path, logs: Path, command: list[str], column: str, keep: int
) -> None:
    """A block of the stored curve cut short (a torn write, an edit by hand): numpy read
    it into an internal ValueError or a curve whose columns do not line up."""
    db = tmp_path / "runs.sqlite"
    assert _run(db, "1h").code == 0
    with sqlite3.connect(db) as con:
        con.execute(f"UPDATE equity_blocks SET {column} = substr({column}, 1, {keep})")
    con.close()
    line = assert_bad_input(run_main([*command, "--db", str(db)]), command)
    assert "equity curve" in line and "damaged" in line, line


def _full_after(pages: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk of every store opened from now on is full once it holds `pages` pages.
    Through the connection the store opens (a module name, looked up as the store opens
    even where storage runs compiled), not a method of the store."""

    class FullAfter(GuardedConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.execute(f"PRAGMA max_page_count={pages}")

    monkeypatch.setattr(store_file, "GuardedConnection", FullAfter)


def test_a_full_disk_mid_run_keeps_every_fill_and_resumes_to_the_same_end(
    tmp_path: Path, logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference_db = tmp_path / "reference.sqlite"
    assert _run(reference_db, "4d").code == 0
    reference = fills(reference_db, runs(reference_db)[0][0])
    db = tmp_path / "full.sqlite"
    with monkeypatch.context() as patch:
        _full_after(300, patch)
        line = assert_bad_input(_run(db, "4d"), "full disk")
    assert str(db) in line and "disk is full" in line, line
    [(run_id, status, _)] = runs(db)
    kept = fills(db, run_id)
    # every fill up to the last checkpoint (paper runs store their rows at checkpoints,
    # every 2 s of wall time), as it was, and nothing of the write that failed
    assert status == "running" and len(kept) < len(reference), (status, len(kept))
    assert kept == reference[: len(kept)]
    resumed = _run(db, "4d", "--resume")
    assert resumed.code == 0, resumed.err
    assert fills(db, run_id) == reference


@pytest.mark.integration
def test_a_file_too_large_mid_run_is_one_line_and_resumes_to_the_same_end(
    tmp_path: Path,
) -> None:
    """The disk fills up while the run writes its files (capped by RLIMIT_FSIZE)."""
    reference_db = tmp_path / "reference.sqlite"
    assert _run_process(reference_db, tmp_path / "ref").returncode == 0
    reference = fills(reference_db, runs(reference_db)[0][0])
    db = tmp_path / "full.sqlite"
    done = _run_process(db, tmp_path, limit=900_000)
    assert done.returncode == 2, done.stderr
    # the journal is the largest file, but under load checkpoints are more frequent
    # and the database's write-ahead log can reach the cap first
    [line] = done.stderr.strip().splitlines()
    ends = ("events.jsonl: File too large (check run.log_dir)",
            f"{db}: cannot read or write the file (disk I/O error)")  # fmt: skip
    assert line.endswith(ends), line
    [(run_id, status, _)] = runs(db)
    assert status == "running" and fills(db, run_id) == reference[: len(fills(db, run_id))]
    assert _run_process(db, tmp_path, "--resume").returncode == 0
    assert fills(db, run_id) == reference


def _run_process(
    db: Path, tmp: Path, *extra: str, limit: int = resource.RLIM_INFINITY
) -> "subprocess.CompletedProcess[str]":
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "perps_bot", *RUN, "--duration", "4d", "--db", str(db), *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        env=env(tmp),
        preexec_fn=cap,
    )


DAMAGE = {
    "truncated checkpoint": "UPDATE checkpoints SET state=substr(state, 1, 3)",
    "garbage checkpoint": "UPDATE checkpoints SET state=x'00112233'",
    "checkpoint marks": "UPDATE checkpoints SET marks='{\"fills\":'",
    "run config": "UPDATE runs SET config_json='[1'",
    "run config not an object": "UPDATE runs SET config_json='[]'",
    "trading state": "UPDATE trading_state SET risk='{bad'",
    "trading state lost a key": (
        "UPDATE trading_state SET state='HALTED', run_id=NULL,"
        " risk=replace(risk, '\"state\"', '\"st\"')"
    ),
    # a halt must never be forgotten: a damaged key name dropped the cause silently
    "trading state halt lost its cause": (
        "UPDATE trading_state SET state='HALTED', run_id=NULL, risk=json_set(risk,"
        " '$.state', 'HALTED', '$.detail', 'stop', '$.manual_halx', 'stop')"
    ),
    "trading state wrongly typed peak": (
        "UPDATE trading_state SET run_id=NULL, risk=json_set(risk, '$.peak', 'abc')"
    ),
    "trading state wrongly typed halt": (
        "UPDATE trading_state SET state='HALTED', run_id=NULL,"
        " risk=json_set(risk, '$.state', 'HALTED', '$.manual_halt', json('false'))"
    ),
    "trading state unknown state": (
        "UPDATE trading_state SET state='halted', run_id=NULL, risk=json_set(risk,"
        " '$.state', 'halted')"
    ),
}


CASES = [(damage, "--resume") for damage in DAMAGE] + [
    (damage, "resume-trading")
    for damage in DAMAGE
    # resume-trading reads only the states it lifts (not an ACTIVE one)
    if damage.startswith("trading state") and damage != "trading state wrongly typed peak"
]


@pytest.mark.parametrize(("damage", "command"), CASES)
def test_a_damaged_checkpoint_or_stored_state_is_one_line(
    tmp_path: Path, logs: Path, damage: str, command: str
) -> None:
    """SQLite keeps no checksum of a row: a damaged byte reads back as other bytes."""
    db = tmp_path / "runs.sqlite"
    assert _run(db, "1h").code == 0
    with sqlite3.connect(db) as con:
        con.execute("UPDATE runs SET status='crashed'")
        if "checkpoint" in damage:  # as written by the code version that wrote the run
            con.execute(
                "INSERT INTO checkpoints SELECT run_id, 0, 0, code_version, '{}', ? FROM runs",
                (pickle.dumps({"format": 1}),),
            )
        con.execute(DAMAGE[damage])
    con.close()
    if command == "resume-trading":
        outcome = run_main(["resume-trading", "--reason", "x", "--db", str(db)])
    else:
        outcome = _run(db, "1h", "--resume")
    line = assert_bad_input(outcome, damage)
    assert "damaged" in line, line


def test_runs_list_shows_a_run_whose_process_is_gone_as_crashed_like_report(
    tmp_path: Path, logs: Path
) -> None:
    """`report` said crashed while `runs list` said running (and `--status crashed`
    did not list it) for the same run of a killed process."""
    db = tmp_path / "runs.sqlite"
    assert _run(db, "1h").code == 0
    with sqlite3.connect(db) as con:
        con.execute(
            "UPDATE runs SET status='running', pid=?, host=?", (_dead_pid(), socket.gethostname())
        )
    con.close()
    [(run_id, _, _)] = runs(db)
    assert "crashed" in run_main(["report", "--db", str(db)]).out
    listed = run_main(["runs", "list", "--db", str(db)])
    assert listed.code == 0 and "crashed" in listed.out and "running" not in listed.out
    assert run_id in run_main(["runs", "list", "--status", "crashed", "--db", str(db)]).out
    assert run_id not in run_main(["runs", "list", "--status", "running", "--db", str(db)]).out


def _dead_pid() -> int:
    """The pid of a process that has ended (and was waited for: it is free)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid
