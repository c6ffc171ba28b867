"""Walk-forward window edges fall on the strategy's bars, and every window, the last one
too, ends flat at the open after its end: a window's out-of-sample result holds its own
time and its own exit, never time of the window after it."""

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perps_bot.config import ConfigError
from perps_bot.research.walkforward import plan_windows
from tests.research.helpers import START_MS, run_cli, write_candles
from tests.research.test_walkforward import LOOSE_PROFILE, _ms, wf_args

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
BARS = [MINUTE, 5 * MINUTE, HOUR, 4 * HOUR, DAY]


@given(
    start=st.integers(0, 10**12),
    bar=st.sampled_from(BARS),
    bars=st.tuples(st.integers(1, 200), st.integers(1, 50), st.integers(0, 20)),
    span=st.integers(0, 1000),
    anchored=st.booleans(),
)
def test_window_edges_fall_on_bar_edges(
    start: int, bar: int, bars: tuple[int, int, int], span: int, anchored: bool
) -> None:
    train, test, extra = (n * bar for n in bars)
    end = start + span * bar
    try:
        plans = plan_windows(start, end, train=train, test=test, step=test + extra,
                             anchored=anchored, bar=bar, after=MINUTE)  # fmt: skip
    except ConfigError as exc:
        assert "no walk-forward window fits" in str(exc)
        return
    assert plans[0].train_start == -(-start // bar) * bar  # the first bar edge from start
    for w in plans:
        for edge in (w.train_start, w.train_end, w.test_start, w.test_end):
            assert edge % bar == 0
        assert w.test_end + MINUTE <= end  # the candle that closes its last position


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        ({"--test": "90m"}, "--test 90m is not a whole number of the 1h bars the strategy sees"),
        ({"--train": "1470m"}, "--train 1470m is not a whole number of the 1h bars"),
        ({"--step": "150m"}, "--step 150m is not a whole number of the 1h bars"),
    ],
)
def test_a_window_that_is_not_whole_bars_is_one_line_and_exit_2(
    workdir: Path, flags: dict[str, str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 90-minute test window of 1-hour bars ends inside a bar: its last position was
    held until that bar closed, in the next window's time (exit 0)."""
    data = write_candles(workdir / "btc.feather", 3 * 1440)
    (workdir / "loose.yaml").write_text(LOOSE_PROFILE)
    args = _args(data, workdir, {"--timeframe": "1h", "--train": "1d", "--test": "2h", **flags})
    code, _, err = run_cli(args, capsys)
    assert code == 2, err
    assert says in err and "use " in err and len(err.strip().splitlines()) == 1, err


def test_data_starting_mid_bar_gets_windows_on_bar_edges_closed_at_their_end(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """1-minute candles from 00:30, 1-hour bars: the windows started at 00:30, ended
    inside a bar, and the strategy saw its window's end only at the bar closing at
    01:00: each window's last position was closed at 01:01, half an hour of the next
    window's time counted in its out-of-sample result."""
    data = write_candles(workdir / "mid.feather", 5 * 1440, seed=11, start_ms=START_MS + HOUR // 2)
    (workdir / "loose.yaml").write_text(LOOSE_PROFILE)
    code, _, err = run_cli(_args(data, workdir, {"--timeframe": "1h"}), capsys)
    assert code == 0, err
    windows = json.loads((workdir / "wf.json").read_text())["windows"]
    assert windows
    for w in windows:
        for edge in (*w["train"], *w["test"]):
            assert _ms(edge) % HOUR == 0, w
    closes = _window_closes(workdir)
    assert closes, "no window ended with a position: the case is not exercised"
    for ts in closes:
        assert any(_ms(w["test"][1]) < ts <= _ms(w["test"][1]) + MINUTE for w in windows), ts


def test_the_last_window_ends_flat_like_the_others(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The out-of-sample run stopped at the last window's last candle, so the position
    the window-end rule closes at the next open stayed open: the last window's result
    had no exit fee or slippage, and its trade was missing from its trades and P&L."""
    data = write_candles(workdir / "btc.feather", 6 * 1440 + 1, seed=11)
    (workdir / "loose.yaml").write_text(LOOSE_PROFILE)
    code, _, err = run_cli(_args(data, workdir, {}), capsys)
    assert code == 0, err
    code, out, err = run_cli(["report", "--profile", "loose.yaml", "--format", "json"], capsys)
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    (portfolio,) = report["portfolios"]
    assert portfolio["open_positions"] == []
    last_end = _ms(report["walkforward"]["windows"][-1]["test"][1])
    assert any(last_end < ts <= last_end + MINUTE for ts in _window_closes(workdir)), (
        "the last window did not end with a position: the case is not exercised"
    )


def test_a_window_needs_the_candle_after_it(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Data ending at the last window's end leaves no open to close its position at:
    that window is not planned (the ones before it are)."""
    data = write_candles(workdir / "btc.feather", 6 * 1440, seed=11)
    (workdir / "loose.yaml").write_text(LOOSE_PROFILE)
    code, _, err = run_cli(_args(data, workdir, {}), capsys)
    assert code == 0, err
    windows = json.loads((workdir / "wf.json").read_text())["windows"]
    assert [w["test"][1][:10] for w in windows] == ["2024-01-04", "2024-01-05", "2024-01-06"]


def _args(data: Path, workdir: Path, flags: dict[str, str]) -> list[str]:
    """Small walk-forward: 2-day training, 1-day test windows, 2 trials each."""
    args = wf_args(data, workdir / "wf.json")
    for flag, value in {"--train": "2d", "--test": "1d", "--trials": "2",
                        "--space": "fast=int:2:4", **flags}.items():  # fmt: skip
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    args[args.index("slow=int:15:60")] = "slow=int:5:10"
    return args


def _window_closes(workdir: Path) -> list[int]:
    with sqlite3.connect(workdir / "data" / "perps_bot.loose.sqlite") as con:
        return [ts for (ts,) in con.execute(
            "SELECT ts FROM fills WHERE reason = 'walkforward window end'")]  # fmt: skip


def test_data_one_candle_short_of_a_window_says_what_a_window_needs() -> None:
    with pytest.raises(ConfigError) as refused:
        plan_windows(HOUR // 2, 6 * DAY + HOUR, train=4 * DAY, test=2 * DAY, bar=HOUR,
                     after=MINUTE)  # fmt: skip
    assert str(refused.value) == (
        "no walk-forward window fits: the data spans 8670m (30m of it before the first bar"
        " edge), a window needs 6d (--train + --test) and the 1m candle after it (where its"
        " last position is closed)"
    )
