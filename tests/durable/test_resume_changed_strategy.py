"""`--resume` refuses a run whose strategy code is not the code it started with (its
fingerprint differs), in one line, exit 2.

Measured on main: the run resumed on the edited code under the fingerprint it started
with, and `promote` then promoted that fingerprint for trades the edited code made (the
session server resumes its sessions the same way after a restart)."""

import sqlite3
from pathlib import Path

import pytest

from tests.badinput.harness import assert_bad_input, run_main

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
            con.execute("UPDATE runs SET strategy_fingerprint=?", (fingerprint,))


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
