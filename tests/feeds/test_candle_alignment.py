"""Candles whose open times are off their interval's grid (every 1m candle opening at
:30 or :00.5; hourly candles in a +05:30 local time read as UTC) are refused in one
line: such files are close times, local times or resampled data, and a backtest of them
settles funding and builds bars at the wrong instants. Weekly (and other intervals that
do not divide a day) have no epoch grid: exchanges open them on Mondays."""

from pathlib import Path

import pytest

from perps_bot.feeds import FeedError
from perps_bot.feeds.loaders import load_candles
from tests.badinput.harness import assert_bad_input, run_main
from tests.badinput.inputs import MINUTE, candle_rows, write_rows

T0 = 1_704_067_200_000  # 2024-01-01, a Monday
HOUR = 60 * MINUTE


@pytest.mark.parametrize(
    ("shift", "interval", "past"),
    [
        (500, MINUTE, "500ms"),
        (30_000, MINUTE, "30s"),
        (HOUR // 2, HOUR, "30m"),
        (MINUTE - 1, MINUTE, "59999ms"),
    ],
)
def test_candles_off_their_grid_are_refused(
    tmp_path: Path, shift: int, interval: int, past: str
) -> None:
    path = write_rows(tmp_path / "c.csv", candle_rows(50, T0 + shift, interval, 100.0))
    with pytest.raises(FeedError, match=rf"row 1 .*: not on the .* grid \({past} past"):
        load_candles(path)


def test_weekly_candles_from_monday_are_fine(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "w.csv", candle_rows(20, T0, 7 * 24 * HOUR, 100.0))
    assert load_candles(path).interval_ms == 7 * 24 * HOUR


def test_a_backtest_of_unaligned_candles_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write_rows(tmp_path / "c.csv", candle_rows(600, T0 + 30_000, MINUTE, 100.0))
    args = ["backtest", "--data", str(path), "--symbol", "BTC-PERP", "--strategy", "sma_cross"]
    line = assert_bad_input(run_main([*args, "--no-progress"]))
    assert "grid" in line, line
