"""Promotion evidence of several portfolios in one run (SPEC 6, 10): the `error_lines`
criterion of a portfolio counts the ERROR lines of that portfolio and the run's own
(those no portfolio is named in: the venue, the feed), not another portfolio's: one
portfolio's errors blocked the promotion of every other portfolio of the run."""

import json
from pathlib import Path

from perps_bot.storage import RunStore
from tests.badinput.harness import run_main

GRUMBLING = "tests.cli_report.grumbling_strategy:Grumbling"


def test_one_portfolios_errors_are_its_own(tmp_path: Path) -> None:
    env = {
        "PERPS_BOT__RUN__LOG_DIR": str(tmp_path / "logs"),
        "PERPS_BOT__RUN__DATA_DIR": str(tmp_path / "data"),
        "PERPS_BOT__RUN__LIVE_VIEW": "false",
    }
    db = str(tmp_path / "db.sqlite")
    args = ["--profile", "dev", "--dev-fast", "--duration", "2h", "--seed", "3", "--db", db]
    ran = run_main([*args, "--strategy", "sma_cross", "--strategy", GRUMBLING], env, timeout=120)
    assert ran.code == 0, ran.err

    with RunStore(Path(db)) as store:
        account = store.run("latest")
        lines = {c.portfolio: c.error_lines for c in store.children(account.run_id)}
    assert account.error_lines == 1  # the account's run has every portfolio's errors
    assert lines == {"sma_cross": 0, "Grumbling": 1}

    shown = run_main(["report", "--db", db, "--format", "json"], env)
    assert shown.code == 0, shown.err
    for entry in json.loads(shown.out)["portfolios"]:
        (errors,) = [c for c in entry["validation"]["criteria"] if c["name"] == "error_lines"]
        assert errors["value"] == lines[entry["id"]], entry["id"]
        assert errors["passed"] is (entry["id"] == "sma_cross")
