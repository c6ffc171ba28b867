"""Several strategies from the command line (SPEC 10): `--strategy` repeated (equal
shares), scoped `--param ID.key=value`, the account's report with its portfolios,
`report --portfolio ID`, exports naming each trade's portfolio, promotion per portfolio."""

import csv
import json
from pathlib import Path

import pytest

from perps_bot.storage import RunStore
from tests.badinput.harness import assert_bad_input, run_main


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "PERPS_BOT__RUN__LOG_DIR": str(tmp_path / "logs"),
        "PERPS_BOT__RUN__DATA_DIR": str(tmp_path / "data"),
        "PERPS_BOT__RUN__LIVE_VIEW": "false",
    }


RUN = ["--profile", "dev", "--dev-fast", "--duration", "1d", "--seed", "9"]
TWO = ["--strategy", "sma_cross", "--strategy", "mean_reversion", "--strategy", "sma_cross"]


def test_repeated_strategy_runs_each_as_its_own_portfolio(
    tmp_path: Path, env: dict[str, str]
) -> None:
    db = str(tmp_path / "db.sqlite")
    ran = run_main([*RUN, *TWO, "--param", "sma_cross-2.fast=4", "--db", db], env, timeout=120)
    assert ran.code == 0, ran.err
    assert "sma_cross-2 (sma_cross)" in ran.out  # the headline lists every portfolio

    shown = run_main(["report", "--db", db, "--format", "json"], env)
    assert shown.code == 0, shown.err
    report = json.loads(shown.out)
    ids = [p["id"] for p in report["portfolios"]]
    assert ids == ["sma_cross", "mean_reversion", "sma_cross-2"]
    assert report["account"]["portfolios"] == ids
    assert [p["initial_balance"] for p in report["portfolios"]] == [pytest.approx(100_000 / 3)] * 3
    params = {p["id"]: p["strategy_params"] for p in report["portfolios"]}
    assert params["sma_cross-2"]["fast"] == 4 and params["sma_cross"]["fast"] == 10
    trades = sum(p["metrics"]["trades"] for p in report["portfolios"])
    assert report["metrics"]["trades"] == trades > 0

    one = run_main(["report", "--db", db, "--format", "json", "--portfolio", "sma_cross-2"], env)
    assert json.loads(one.out)["portfolios"][0]["id"] == "sma_cross-2"
    assert json.loads(one.out)["metrics"] == report["portfolios"][2]["metrics"]

    out = tmp_path / "export"
    exported = run_main(["report", "--db", db, "--export", str(out), "--out", "/dev/null"], env)
    assert exported.code == 0, exported.err
    with (out / "trades.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == trades
    assert {r["portfolio"] for r in rows} <= set(ids) and len({r["portfolio"] for r in rows}) > 1
    with (out / "orders.csv").open() as fh:
        assert {r["portfolio"] for r in csv.DictReader(fh)} <= set(ids)

    html = tmp_path / "report.html"
    assert run_main(["report", "--db", db, "--format", "html", "--out", str(html)], env).code == 0
    page = html.read_text()
    for pid in ids:
        assert f'id="portfolio-{pid}"' in page and f'id="trades-{pid}"' in page

    refused = run_main(["promote", "--to", "canary", "--db", db], env)
    assert "give --portfolio ID" in assert_bad_input(refused)
    judged = run_main(["promote", "--to", "canary", "--db", db, "--portfolio", "sma_cross"], env)
    assert judged.code == 1 and "criteria failed" in judged.err  # one day: not enough evidence


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([*TWO, "--param", "fast=3"], "name the portfolio"),
        ([*TWO, "--param", "nope.fast=3"], "no portfolio 'nope'"),
        (["--strategy", "sma_cross", "--param", "other.fast=3"], "one strategy"),
    ],
)
def test_unscoped_or_unknown_portfolio_params_are_one_line(
    tmp_path: Path, env: dict[str, str], args: list[str], words: str
) -> None:
    outcome = run_main([*RUN, *args, "--db", str(tmp_path / "db.sqlite")], env)
    assert words in assert_bad_input(outcome, args)
    assert not (tmp_path / "db.sqlite").exists()


def test_report_of_a_missing_portfolio_is_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    db = str(tmp_path / "db.sqlite")
    assert run_main([*RUN, "--duration", "1h", "--db", db], env, timeout=60).code == 0
    outcome = run_main(["report", "--db", db, "--portfolio", "zz"], env)
    assert "no portfolio 'zz' (it has: main)" in assert_bad_input(outcome)


def test_the_account_of_portfolios_that_leave_capital_unallocated(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """Capitals may add up to less than account.initial_balance: the account's figures
    are the sum of the portfolios' books (its equity curve starts at their capital), so
    its return is theirs, not minus the money no portfolio holds."""
    profile = tmp_path / "two.yaml"
    profile.write_text(
        "profile: dev\naccount: {initial_balance: 100000}\nportfolios:\n"
        "  - {id: a, strategy: sma_cross, params: {fast: 5, slow: 20}, capital: 30000}\n"
        "  - {id: b, strategy: sma_cross, capital: 30000}\n"
    )
    db = str(tmp_path / "db.sqlite")
    ran = run_main(["--profile", str(profile), "--dev-fast", "--duration", "6h", "--db", db], env)
    assert ran.code == 0, ran.err
    report = json.loads(run_main(["report", "--db", db, "--format", "json"], env).out)
    equity = sum(p["final_equity"] for p in report["portfolios"])
    assert report["account"]["initial_balance"] == report["run"]["initial_balance"] == 60_000
    assert report["account"]["final_equity"] == pytest.approx(equity)
    assert report["metrics"]["return_pct"] == pytest.approx((equity / 60_000 - 1) * 100)
    assert abs(report["metrics"]["return_pct"]) < 1
    assert abs(report["monthly_returns"][0]["return_pct"]) < 1
    listed = json.loads(run_main(["runs", "list", "--db", db, "--format", "json"], env).out)
    account = next(r for r in listed["runs"] if r["parent_run_id"] is None)
    assert account["return_pct"] == pytest.approx(report["metrics"]["return_pct"])
    with RunStore(db, read_only=True) as store:  # what drift and other readers see
        assert store.run(account["run_id"]).initial_balance == 60_000
