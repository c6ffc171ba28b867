"""`perps-bot report` shows a run's plan history (SPEC 16): the llm_planner's adopted
plans with their rationale and their triggers' in the table, the JSON (`plans`) and the
HTML page; the plan strategy's executed rows; nothing for a run that planned nothing."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.plans.fake_llm import fake_llm
from tests.plans.helpers import Result, backtest, hour, run_main, write_candles, write_plan
from tests.plans.llm_runs import SCRIPT, llm_backtest, llm_profile, llm_workdir

__all__ = ["llm_workdir"]


@pytest.fixture
def planned(llm_workdir: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Path]:
    """A backtest whose planner adopted the two plans of SCRIPT (the rest broke the schema)."""
    with fake_llm() as server:
        server.script = list(SCRIPT)
        result = llm_backtest(llm_workdir, llm_profile(llm_workdir, server), "bt.sqlite", capsys)
        assert result.code == 0, result.err
        yield llm_workdir / "bt.sqlite"


def report(db: Path, capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    result = run_main(["report", "--db", str(db), *args], capsys)
    assert result.code == 0, result.err
    return result


def test_the_json_report_has_the_plans(planned: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plans = json.loads(report(planned, capsys, "--format", "json").out)["plans"]
    assert [(p["time"], p["rationale"]) for p in plans["llm"]] == [
        ("2024-03-01T01:00:00.000Z", "momentum is up"),  # the first bar closes at 01:00
        ("2024-03-01T03:00:00.000Z", "the rise stalls"),
    ]
    first = plans["llm"][0]["triggers"]
    assert first == [{"symbol": "BTC-PERP", "condition": "always", "target_position": 1.0,
                      "stop": None, "take_profit": None,
                      "rationale": "go long on the rise"}]  # fmt: skip
    assert plans["executed_rows"] == []


def test_the_table_and_the_html_show_the_plans(
    planned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = report(planned, capsys, "--out", str(planned.parent / "r.txt"))
    text = (planned.parent / "r.txt").read_text()
    assert table.out == "" and "Plan history (2 plans)" in text
    assert "momentum is up" in text and "BTC-PERP always -> 1: go long on the rise" in text
    report(planned, capsys, "--format", "html", "--out", str(planned.parent / "r.html"))
    page = (planned.parent / "r.html").read_text()
    section = page[page.index("<h2>Plan history</h2>") : page.rindex("</body>")]
    assert (
        "2024-03-01T03:00:00.000Z" in section
        and "BTC-PERP always -&gt; 0: take the gain" in section
    )


def test_executed_plan_rows_are_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERPS_BOT__RUN__LOG_DIR", str(tmp_path / "logs"))
    candles = write_candles(tmp_path / "btc.csv", [(100.0, 101.0, 99.0, 100.0)] * 6)
    plan = write_plan(tmp_path / "p.csv", [
        {"id": "r1", "side": "long", "size": 1, "valid_from": hour(1)},
        {"id": "r2", "side": "flat", "valid_from": hour(3)},
        {"id": "late", "side": "long", "size": 1, "valid_from": hour(20)},
    ])  # fmt: skip
    assert backtest(tmp_path, candles, plan, capsys).code == 0
    data = json.loads(report(tmp_path / "bt.sqlite", capsys, "--format", "json").out)
    assert data["plans"] == {"llm": [], "executed_rows": ["r1", "r2"]}


def test_a_run_without_plans_has_no_section(
    llm_workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = llm_workdir / "sma.sqlite"
    result = run_main(["backtest", "--data", str(llm_workdir / "btc.csv"), "--symbol", "BTC-PERP",
                       "--strategy", "sma_cross", "--param", "fast=2", "--param", "slow=4",
                       "--db", str(db), "--no-progress"], capsys)  # fmt: skip
    assert result.code == 0, result.err
    assert "plans" not in json.loads(report(db, capsys, "--format", "json").out)
    assert "Plan history" not in report(db, capsys).out


def echo(request: dict[str, Any]) -> str:
    """A plan (no triggers) whose rationale is the start of the system prompt."""
    system = request["messages"][0]["content"]
    return json.dumps({"rationale": system.splitlines()[0][:20], "triggers": []})


def test_each_portfolio_shows_its_own_plans(
    llm_workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fake_llm() as server:
        server.respond = echo
        profile = llm_profile(llm_workdir, server)
        second = ("--strategy", "llm_planner", "--param", "llm_planner-2.template=mean_reversion")
        result = llm_backtest(llm_workdir, profile, "two.sqlite", capsys, *second)
        assert result.code == 0, result.err
    db = llm_workdir / "two.sqlite"
    plans = json.loads(report(db, capsys, "--format", "json").out)["plans"]["llm"]
    assert len(plans) == 12  # two planners, six plans each
    mine = {(p["portfolio"], p["rationale"]) for p in plans}
    assert mine == {("llm_planner", "You are a discipline"),
                    ("llm_planner-2", "You trade mean rever")}  # fmt: skip
    table = report(db, capsys, "--out", str(llm_workdir / "two.txt"))
    assert table.code == 0 and "portfolio" in (llm_workdir / "two.txt").read_text()
    one = report(db, capsys, "--portfolio", "llm_planner-2", "--format", "json").out
    assert {p["rationale"] for p in json.loads(one)["plans"]["llm"]} == {"You trade mean rever"}
