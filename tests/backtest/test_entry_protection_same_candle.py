"""An entry that asks for a stop or a take-profit and fills inside a candle (a market
entry at its open) is protected from that point of the candle's path on, as the
exchange protects it from its fill: a stop the rest of the candle goes through stops
the trade out in that candle. (Placed only after the whole candle was matched, the
protective orders first met the next candle: a wick through the stop right after the
entry went unseen, and the trade lived on, to a later, other exit.)"""

from pathlib import Path

import pytest

from tests.backtest.candle_files import daily, ms
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


@pytest.mark.parametrize(
    ("row", "bar", "reason", "exit_price"),
    [
        # a long's limit at 98 fills on the way from the high (101) down to the low (90):
        # the stop at 94 is on the same leg, after the fill
        ({"side": "long", "limit_price": 98, "stop": 94}, (100.0, 101.0, 90.0, 95.0),
         "stop", 94.0),
        # a short's limit at 102 fills on the way from the low (99) up to the high (110):
        # the stop at 106 is on the same leg
        ({"side": "short", "limit_price": 102, "stop": 106}, (100.0, 110.0, 99.0, 105.0),
         "stop", 106.0),
        # a long's take-profit (above its fill) is not on the move down, but on the
        # move from the low to the close (100.8): met there, at its price
        ({"side": "long", "limit_price": 98, "stop": 80, "take_profit": 100.5},
         (100.0, 101.0, 90.0, 100.8), "take_profit", 100.5),
    ],
)  # fmt: skip
def test_a_stop_on_the_leg_a_limit_entry_filled_on_is_met_on_that_leg(
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    row: dict[str, object],
    bar: tuple[float, float, float, float],
    reason: str,
    exit_price: float,
) -> None:
    """The path goes from one extreme to the other through every price between: a
    resting limit entry fills on the way, and a stop (or take-profit) between its fill
    and the extreme is passed after the fill on that very leg, not only by the next
    point (the close above the stop: the trade was kept, paper better than live)."""
    bars = [
        (100.0, 101.0, 99.0, 100.0),  # 0: the plan row acts at its close
        (100.0, 101.0, 99.5, 100.0),  # 1: the limit rests
        bar,  # 2: the limit fills on the leg between the extremes
        (100.0, 101.0, 99.0, 100.0),  # 3
    ]
    candles = write_candles(workdir / "btc.csv", bars)
    plan_row = {"id": "a", "size": 1, "entry": "limit", "valid_from": hour(1), **row}
    result = backtest(workdir, candles, write_plan(workdir / "plan.csv", [plan_row]), capsys)
    assert result.code == 0, result.err
    (trade,) = exported(workdir, capsys, "trades.csv")
    assert float(trade["entry_price"]) == pytest.approx(float(str(row["limit_price"])))
    assert trade["exit_reason"] == reason
    assert trade["close_time"].startswith("2024-03-01T03:00:00")  # bar 2's close
    assert float(trade["exit_price"]) == pytest.approx(exit_price, rel=2e-3)


def test_a_stop_on_the_leg_is_met_in_a_candle_a_settlement_splits(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A daily candle with 8h funding settlements inside it is walked part by part: the
    stop of a limit entry filled on the move down to the low is met on that move too."""
    candles = daily(workdir / "btc.csv", [(100.0, 101.0, 99.0, 100.0),
                                           (100.0, 101.0, 99.5, 100.0),
                                           (100.0, 101.0, 90.0, 95.0),
                                           (100.0, 101.0, 99.0, 100.0)])  # fmt: skip
    with (workdir / "funding.csv").open("w") as fh:
        fh.write("timestamp,open,high,low,close,volume\n")
        for k in range(13):
            fh.write(f"{ms('2024-03-01T00:00:00Z') + k * 8 * 3_600_000},0,0,0,0,0\n")
    row = {"id": "a", "side": "long", "size": 1, "entry": "limit", "limit_price": 98,
           "stop": 94, "valid_from": "2024-03-02T00:00:00Z"}  # fmt: skip
    plan = write_plan(workdir / "plan.csv", [row])
    result = backtest(workdir, candles, plan, capsys, "--funding", str(workdir / "funding.csv"))
    assert result.code == 0, result.err
    (trade,) = exported(workdir, capsys, "trades.csv")
    assert float(trade["entry_price"]) == pytest.approx(98.0)
    assert trade["exit_reason"] == "stop"
    assert float(trade["exit_price"]) == pytest.approx(94.0, rel=2e-3)
    assert trade["close_time"] < "2024-03-04"  # in the entry's candle
