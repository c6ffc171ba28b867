"""Issue 11: a run whose process died is `crashed`, not `running` for ever (measured on
main: 30 of 30 runs killed with SIGKILL stayed `running`), and `report` says so."""

import json
import time
from pathlib import Path

import pytest

from tests.durable.helpers import cli, kill9, query, runs, start, wait_for


def _killed_run(tmp: Path, db: Path, after_s: float) -> tuple[str, int]:
    proc = start("--profile", "dev", "--dev-fast", "--duration", "60d", "--db", str(db), tmp=tmp)
    try:
        wait_for(lambda: bool(runs(db)), timeout=60, what="the run to be created")
        time.sleep(after_s)
    finally:
        kill9(proc)
    run_id, status, _ = runs(db)[-1]
    assert status == "running"  # nobody could have said otherwise yet
    return run_id, proc.pid


@pytest.mark.integration
def test_the_next_bot_marks_a_killed_run_crashed(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    killed, pid = _killed_run(tmp_path, db, after_s=0.5)
    result = cli(
        "--profile", "dev", "--dev-fast", "--duration", "1h", "--db", str(db), tmp=tmp_path
    )
    assert result.returncode == 0, result.stderr
    by_id = {run_id: (status, detail) for run_id, status, detail in runs(db)}
    status, detail = by_id[killed]
    assert status == "crashed"
    assert detail is not None and str(pid) in detail

    report = cli("report", "--run", killed, "--db", str(db), tmp=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "crashed" in report.stdout


@pytest.mark.integration
def test_report_of_a_killed_latest_run_says_it_crashed(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    killed, pid = _killed_run(tmp_path, db, after_s=0.0)
    table = cli("report", "--db", str(db), tmp=tmp_path)
    assert table.returncode == 0, table.stderr
    assert killed in table.stdout and "crashed" in table.stdout
    assert str(pid) in table.stdout
    as_json = cli("report", "--run", "latest", "--format", "json", "--db", str(db), tmp=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["run"]["status"] == "crashed"
    # reading never changes the database: the next bot records the crash
    assert query(db, "SELECT status FROM runs WHERE run_id=?", (killed,)) == [("running",)]
