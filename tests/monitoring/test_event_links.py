"""What events.jsonl tells a trader about an order (SPEC 5): why it is the size it is,
and which entry a protective order protects (correlation ids link signal -> order ->
fill)."""

import json
from pathlib import Path
from typing import Any

import pytest

from tests.plans.helpers import backtest, hour, write_candles, write_plan

BARS = (
    [(100.0, 101.0, 99.0, 100.0)] * 2
    + [(100.0, 112.0, 99.0, 111.0)]
    + [(111.0, 111.0, 110.0, 111.0)] * 2
)


@pytest.fixture
def workdir(in_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PERPS_BOT__RUN__LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def _events(workdir: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> list[Any]:
    candles = write_candles(workdir / "btc.csv", BARS)
    plan = write_plan(
        workdir / "plan.csv",
        [{"id": "a", "side": "long", "size": 2, "stop": 95, "take_profit": 110,
          "valid_from": hour(1)}],
    )  # fmt: skip
    result = backtest(workdir, candles, plan, capsys, *extra)
    assert result.code == 0, result.err
    path = workdir / "logs" / "events.backtest.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_an_order_the_gate_resized_says_which_cap_and_why(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERPS_BOT__RISK__MAX_ORDER_NOTIONAL", "150")
    events = _events(workdir, capsys)
    (signal,) = [e for e in events if e["type"] == "signal"]
    order = next(e for e in events if e["type"] == "order")
    assert order["correlation_id"] == signal["correlation_id"]
    assert signal["size"] == 2 and order["size"] < 2  # cut to the order cap
    resized = order["resized"]
    assert resized["reason"] == "MAX_ORDER_NOTIONAL", order
    assert resized["requested"] == 2 and "150" in resized["detail"], order


def test_an_order_the_gate_let_through_whole_is_not_marked_resized(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = _events(workdir, capsys)
    order = next(e for e in events if e["type"] == "order")
    assert order["size"] == 2 and order["resized"] is None


def test_protective_orders_carry_the_correlation_id_of_their_entry(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = _events(workdir, capsys)
    (signal,) = [e for e in events if e["type"] == "signal"]
    orders = [e for e in events if e["type"] == "order"]
    kinds = sorted(o["order_type"] for o in orders)
    assert kinds == ["market", "stop_market", "take_profit_market"]
    assert {o["correlation_id"] for o in orders} == {signal["correlation_id"]}
    fills = [e for e in events if e["type"] == "fill"]
    assert len(fills) == 2  # the entry and its take-profit
    assert {f["correlation_id"] for f in fills} == {signal["correlation_id"]}
    protective = {o["client_id"] for o in orders if o["order_type"] != "market"}
    assert len(protective) == 2 and signal["correlation_id"] not in protective
