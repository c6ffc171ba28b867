"""`perps-bot backtest --mark FILE`: the paper venue's stops and take-profits trigger on
the mark, as the live venue's do on the exchange (workingType=MARK_PRICE), and not on a
wick of the last price alone; without a mark file they trigger on the last price."""

from pathlib import Path

import pytest

from tests.plans.helpers import backtest, exported, hour, write_candles, write_plan

# hourly bars (open, high, low, close); a long entered at bar 1's open, stop 95
BARS = [
    (100.0, 101.0, 99.0, 100.0),  # 0: the plan row acts at its close
    (100.0, 101.0, 99.0, 100.0),  # 1: the long fills at the open
    (100.0, 101.0, 94.0, 100.0),  # 2: the last wicks through the stop, the mark does not
    (100.0, 101.0, 97.0, 98.0),  # 3: the mark goes through the stop, the last does not
    (98.0, 99.0, 97.0, 98.0),  # 4
]
MARKS = [
    (100.0, 100.5, 99.5, 100.0),
    (100.0, 100.5, 99.5, 100.0),
    (100.0, 100.5, 98.0, 100.0),
    (100.0, 100.5, 94.5, 98.0),
    (98.0, 98.5, 97.5, 98.0),
]


def _long_with_stop(
    workdir: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> list[dict[str, str]]:
    candles = write_candles(workdir / "btc.csv", BARS)
    plan = write_plan(
        workdir / "plan.csv", [{"id": "a", "side": "long", "size": 1, "stop": 95,
                                "valid_from": hour(1)}]
    )  # fmt: skip
    result = backtest(workdir, candles, plan, capsys, *extra)
    assert result.code == 0, result.err
    return exported(workdir, capsys, "trades.csv")


def test_stop_triggers_on_the_mark_path_with_a_mark_file(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marks = write_candles(workdir / "mark.csv", MARKS)
    (trade,) = _long_with_stop(workdir, capsys, "--mark", str(marks))
    assert trade["exit_reason"] == "stop"
    assert trade["close_time"].startswith("2024-03-01T04:00:00")  # bar 3's close, not bar 2's
    # the last never went below 97 in bar 3: the stop sells there, not at its trigger
    assert float(trade["exit_price"]) == pytest.approx(97.0, rel=2e-3)


def test_stop_triggers_on_the_last_price_without_a_mark_file(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (trade,) = _long_with_stop(workdir, capsys)
    assert trade["exit_reason"] == "stop"
    assert trade["close_time"].startswith("2024-03-01T03:00:00")  # bar 2's wick
    assert float(trade["exit_price"]) == pytest.approx(95.0, rel=2e-3)
