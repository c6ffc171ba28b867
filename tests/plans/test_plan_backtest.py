"""The `plan` strategy through `perps-bot backtest`: market and limit entries, stop and
take-profit exits simulated on the candle path by the one matching engine, a `flat`
row, and a bad row reported and skipped."""

import json
from pathlib import Path

import pytest

from tests.plans.helpers import backtest, exported, hour, run_main, write_candles, write_plan

# a candle's event time is its close: a row valid from hour(n) acts at the close of bar
# n-1 and its market order fills at bar n's open
BARS = [
    (100, 101, 99, 100),  # 0: long entry (market) at the next bar's open
    (100, 101, 99, 100),  # 1
    (100, 112, 99, 111),  # 2: high 112 -> take-profit at 110
    (111, 111, 104, 104),  # 3: short limit at 106 rests ...
    (104, 107, 103, 106),  # 4: ... and fills when the high reaches 106
    (106, 106, 101, 102),  # 5
    (102, 110, 101, 109),  # 6: high 110 -> the short's stop at 108
    (109, 109, 108, 109),  # 7: long again, no protection
    (109, 110, 108, 109),  # 8: flat row -> exit "plan"
    (109, 110, 108, 109),  # 9: long, open at the end
    (109, 110, 108, 109),  # 10
]


@pytest.fixture
def workdir(in_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PERPS_BOT__RUN__LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_plan_entries_and_exits_carry_their_exit_reasons(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    candles = write_candles(workdir / "btc.csv", [tuple(map(float, b)) for b in BARS])  # type: ignore[misc]
    plan = write_plan(
        workdir / "trade_plan.csv",
        [
            {"id": "a", "side": "long", "size": 2, "stop": 95, "take_profit": 110,
             "valid_from": hour(1)},
            {"id": "b", "side": "short", "size": 2, "entry": "limit", "limit_price": 106,
             "stop": 108, "take_profit": 98, "valid_from": hour(4), "valid_until": hour(6)},
            {"id": "c", "side": "long", "notional": 218, "valid_from": hour(8)},
            {"id": "d", "side": "flat", "valid_from": hour(9)},
            {"id": "e", "side": "long", "size": "lots", "valid_from": hour(9)},
            {"id": "f", "side": "long", "size": 1, "valid_from": hour(10)},
        ],
    )  # fmt: skip
    result = backtest(workdir, candles, plan, capsys)
    assert result.code == 0, result.err
    log = (workdir / "logs" / "perps_bot.backtest.log").read_text()
    bad = [line for line in log.splitlines() if "row 5" in line]
    assert len(bad) == 1 and "trade_plan.csv row 5, column size: " in bad[0]

    trades = exported(workdir, capsys, "trades.csv")
    summary = [(t["side"], float(t["size"]), t["exit_reason"]) for t in trades]
    assert summary == [
        ("long", 2.0, "take_profit"),
        ("short", 2.0, "stop"),
        ("long", 2.0, "plan"),
    ]  # row f's long is still open at the end: not a trade
    # SPEC 16's `end_of_run`: a backtest does not close what is open at its end (no
    # forced fill, so no trade and no exit reason); the report lists it as open
    report = run_main(["report", "--db", str(workdir / "bt.sqlite"), "--format", "json"], capsys)
    (open_position,) = json.loads(report.out)["portfolios"][0]["open_positions"]
    assert (open_position["side"], open_position["size"]) == ("long", 1.0)
    assert open_position["open_time"] == "2024-03-01T11:00:00.000Z"  # bar 10, at its event
    assert float(trades[0]["exit_price"]) == pytest.approx(110, rel=2e-3)  # at the trigger
    assert float(trades[1]["entry_price"]) == pytest.approx(106)  # the limit, as a maker
    assert float(trades[1]["exit_price"]) == pytest.approx(108, rel=2e-3)

    orders = exported(workdir, capsys, "orders.csv")
    protective = [(o["type"], o["status"]) for o in orders if o["type"] != "market"
                  and o["type"] != "limit"]  # fmt: skip
    # each entry's sibling was cancelled when the other one filled (one-cancels-other)
    assert sorted(protective) == sorted(
        [("take_profit_market", "filled"), ("stop_market", "canceled"),
         ("stop_market", "filled"), ("take_profit_market", "canceled")]
    )  # fmt: skip
