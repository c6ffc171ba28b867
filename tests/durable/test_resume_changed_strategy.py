"""`--resume` refuses a run whose strategy code is not the code it started with (its
fingerprint differs), in one line, exit 2.

Measured on main: the run resumed on the edited code under the fingerprint it started
with, and `promote` then promoted that fingerprint for trades the edited code made (the
session server resumes its sessions the same way after a restart)."""

import sqlite3
from pathlib import Path

import pytest

from tests.badinput.harness import assert_bad_input, run_main
from tests.plans.helpers import write_plan

RUN = ["--profile", "dev", "--dev-fast", "--duration", "30m", "--seed", "5"]


@pytest.fixture(autouse=True)
def _scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERPS_BOT__RUN__LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp_path / "data"))


def _interrupted(db: Path, fingerprint: str | None = None) -> None:
    """The run as a kill leaves it; `fingerprint`: as if started by other strategy code."""
    with sqlite3.connect(db) as con:
        con.execute("UPDATE runs SET status='interrupted'")
        if fingerprint is not None:
            con.execute("UPDATE runs SET strategy_code_fingerprint=?", (fingerprint,))


@pytest.mark.parametrize("portfolios", [[], ["--strategy", "sma_cross"] * 2])
def test_a_run_started_by_other_strategy_code_is_not_resumed(
    tmp_path: Path, portfolios: list[str]
) -> None:
    db = tmp_path / "dev.sqlite"
    run = [*RUN, *portfolios, "--db", str(db)]
    assert run_main(run).code == 0
    _interrupted(db)
    resumed = run_main([*run, "--resume"])
    assert resumed.code == 0, resumed.err  # the same code: resumed
    _interrupted(db, "0123456789abcdef")
    line = assert_bad_input(run_main([*run, "--resume"]))
    assert "not the code it started with (fingerprint 0123456789abcdef" in line, line
    with sqlite3.connect(db) as con:  # a run from before schema 9: its fingerprint
        con.execute("UPDATE runs SET strategy_code_fingerprint=NULL")
    assert run_main([*run, "--resume"]).code == 0
    _interrupted(db)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE runs SET strategy_code_fingerprint=NULL,"
                    " strategy_fingerprint='0123456789abcdef'")  # fmt: skip
    line = assert_bad_input(run_main([*run, "--resume"]))
    assert "not the code it started with (fingerprint 0123456789abcdef" in line, line


def test_a_plan_run_resumes_after_its_plan_file_was_edited(tmp_path: Path) -> None:
    """Editing the plan of a running plan strategy is the documented workflow: the
    fingerprint covers the plan file's content (for promotions), so a run stopped, its
    plan edited, was refused by `--resume` as "not the code it started with" (and the
    server's paper sessions of plans failed after a restart). Resume compares the code,
    params and bar size; the run keeps the fingerprint it started with."""
    row = {"id": "a", "side": "long", "size": 0.01, "entry": "market",
           "valid_from": "2024-01-01T00:10:00Z"}  # fmt: skip
    plan = write_plan(tmp_path / "plan.csv", [row])
    db = tmp_path / "dev.sqlite"
    run = [*RUN, "--strategy", "plan", "--param", f"file={plan}", "--db", str(db)]
    assert run_main(run).code == 0
    _interrupted(db)
    with sqlite3.connect(db) as con:
        started = con.execute("SELECT strategy_fingerprint FROM runs").fetchone()[0]
    write_plan(plan, [row, {"id": "b", "side": "flat", "valid_from": "2024-01-01T00:20:00Z"}])
    resumed = run_main([*run, "--resume"])
    assert resumed.code == 0, resumed.err
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT strategy_fingerprint FROM runs").fetchall() == [(started,)]
