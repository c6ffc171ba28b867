"""An entry that asks for a stop or a take-profit and fills inside a candle (a market
entry at its open) is protected from that point of the candle's path on, as the
exchange protects it from its fill: a stop the rest of the candle goes through stops
the trade out in that candle. (Placed only after the whole candle was matched, the
protective orders first met the next candle: a wick through the stop right after the
entry went unseen, and the trade lived on, to a later, other exit.)"""

from pathlib import Path

import pytest

from tests.plans.helpers import backtest, exported, hour, write_candles, write_plan

# hourly bars (open, high, low, close)
BARS = [
    (100.0, 101.0, 99.0, 100.0),  # 0: the plan row acts at its close
    (100.0, 106.0, 94.0, 100.0),  # 1: the entry fills at the open; the path goes to 94
    (100.0, 101.0, 99.0, 100.0),  # 2: back where it was
    (100.0, 101.0, 99.0, 100.0),  # 3
]


def _trades(
    workdir: Path, capsys: pytest.CaptureFixture[str], row: dict[str, object]
) -> list[dict[str, str]]:
    candles = write_candles(workdir / "btc.csv", BARS)
    plan = write_plan(workdir / "plan.csv", [{"id": "a", "size": 1, "valid_from": hour(1), **row}])
    result = backtest(workdir, candles, plan, capsys)
    assert result.code == 0, result.err
    return exported(workdir, capsys, "trades.csv")


def test_a_long_stops_out_in_the_candle_it_entered(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (trade,) = _trades(workdir, capsys, {"side": "long", "stop": 95})
    assert trade["exit_reason"] == "stop"
    assert trade["close_time"].startswith("2024-03-01T02:00:00")  # bar 1, not the run's end
    assert float(trade["exit_price"]) == pytest.approx(95.0, rel=2e-3)


def test_a_short_takes_profit_in_the_candle_it_entered(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (trade,) = _trades(workdir, capsys, {"side": "short", "take_profit": 96, "stop": 110})
    assert trade["exit_reason"] == "take_profit"
    assert trade["close_time"].startswith("2024-03-01T02:00:00")
    assert float(trade["exit_price"]) == pytest.approx(96.0, rel=2e-3)


def test_a_resting_limit_entry_is_protected_from_its_fill_on(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bars = [
        (100.0, 101.0, 99.0, 100.0),  # 0: the plan row acts at its close
        (100.0, 101.0, 99.0, 100.0),  # 1: the limit at 98 rests
        (100.0, 106.0, 97.0, 100.0),  # 2: fills at the low (98), then the high passes 102
        (100.0, 101.0, 99.0, 100.0),  # 3: the take-profit would not trigger here
    ]
    candles = write_candles(workdir / "btc.csv", bars)
    row = {"id": "a", "side": "long", "size": 1, "entry": "limit", "limit_price": 98,
           "stop": 90, "take_profit": 102, "valid_from": hour(1)}  # fmt: skip
    result = backtest(workdir, candles, write_plan(workdir / "plan.csv", [row]), capsys)
    assert result.code == 0, result.err
    (trade,) = exported(workdir, capsys, "trades.csv")
    assert float(trade["entry_price"]) == pytest.approx(98.0)
    assert trade["exit_reason"] == "take_profit"
    assert trade["close_time"].startswith("2024-03-01T03:00:00")  # bar 2's close
    assert float(trade["exit_price"]) == pytest.approx(102.0, rel=2e-3)
