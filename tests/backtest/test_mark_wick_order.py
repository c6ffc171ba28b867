"""`perps-bot backtest --mark FILE`: a mark series' low and high inside a candle are at
the candle path's low and high (venues.order_queue.mark_path), and the ledger checks
each against the positions held when the path gets there: a position closed later in
the candle (a take-profit at the other extreme) was still open when the mark went
past its liquidation price, and a position opened later than the wick was not."""

import sqlite3
from pathlib import Path

import pytest

from tests.plans.helpers import backtest, exported, hour, write_candles, write_plan

# isolated 20x: a long of 1 at ~100 is liquidated at ~95.5, one at ~106 at ~101.2
LEVERAGED = {
    "PERPS_BOT__ACCOUNT__MARGIN_MODE": "isolated",
    "PERPS_BOT__ACCOUNT__DEFAULT_LEVERAGE": "20",
    "PERPS_BOT__RISK__MAX_LEVERAGE": "125",
}


@pytest.fixture
def leveraged(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in LEVERAGED.items():
        monkeypatch.setenv(key, value)
    return workdir


def _liquidations(workdir: Path) -> list[tuple[int, float]]:
    with sqlite3.connect(workdir / "bt.sqlite") as con:
        return con.execute("SELECT ts, price FROM fills WHERE is_liquidation=1").fetchall()


_QUIET = (105.0, 106.0, 104.0, 105.0)


@pytest.mark.parametrize("entry_candle", [False, True], ids=["candle-after", "entry-candle"])
def test_wick_before_the_take_profit_liquidates(
    leveraged: Path, capsys: pytest.CaptureFixture[str], entry_candle: bool
) -> None:
    """The wicked bar goes to its low first (1 away from the open, its high 11): the
    mark's low (93, past the long's ~95.5) comes before the mark's high reaches the
    take-profit. Bar 2, the one after the long filled at bar 1's open; or bar 1 itself,
    the entry's own candle, walked point by point for its take-profit placed at once."""
    flat, wicked = (100.0, 101.0, 99.0, 100.0), (100.0, 111.0, 99.0, 105.0)
    bars = [flat, wicked, _QUIET, _QUIET] if entry_candle else [flat, flat, wicked, _QUIET]
    wick = bars.index(wicked)
    marks = [(100.0, 111.0, 93.0, 105.0) if k == wick else bar for k, bar in enumerate(bars)]
    candles = write_candles(leveraged / "btc.csv", bars)
    mark = write_candles(leveraged / "mark.csv", marks)
    row = {"id": "a", "side": "long", "size": 1, "take_profit": 110, "valid_from": hour(1)}
    plan = write_plan(leveraged / "plan.csv", [row])
    result = backtest(leveraged, candles, plan, capsys, "--mark", str(mark))
    assert result.code == 0, result.err
    (trade,) = exported(leveraged, capsys, "trades.csv")
    assert trade["exit_reason"] == "liquidation"
    assert trade["close_time"].startswith(f"2024-03-01T0{wick + 1}:00:00")  # the wicked bar
    ((_, price),) = _liquidations(leveraged)
    assert price == pytest.approx(95.5, abs=0.2)


@pytest.mark.parametrize("protection", [{}, {"stop": 80}], ids=["plain", "protected"])
def test_wick_before_the_entry_does_not_liquidate_it(
    leveraged: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    protection: dict[str, float],
) -> None:
    """A latency of 45 minutes on hourly bars: the market entry sent at bar 0's close
    reaches bar 1 at its last path point before the close, its high (106): the mark's
    low (90, at the path's low before it) is no danger to a long bought after it, also
    when it asks for a stop (its candle walked point by point for it)."""
    monkeypatch.setenv("PERPS_BOT__MOCK__LATENCY", "45m")
    bars = [
        (100.0, 101.0, 99.0, 100.0),  # 0: the plan row acts at its close
        (100.0, 106.0, 99.0, 105.0),  # 1: low, then high (where the long is bought)
        _QUIET,
        _QUIET,
    ]
    marks = [bars[0], (100.0, 106.0, 90.0, 105.0), bars[2], bars[3]]
    candles = write_candles(leveraged / "btc.csv", bars)
    mark = write_candles(leveraged / "mark.csv", marks)
    row = {"id": "a", "side": "long", "size": 1, "valid_from": hour(1), **protection}
    plan = write_plan(leveraged / "plan.csv", [row])
    result = backtest(leveraged, candles, plan, capsys, "--mark", str(mark))
    assert result.code == 0, result.err
    with sqlite3.connect(leveraged / "bt.sqlite") as con:
        ((price,),) = con.execute("SELECT price FROM fills WHERE is_liquidation=0").fetchall()
    assert price == pytest.approx(106.0, rel=2e-3)  # bought at the high
    assert _liquidations(leveraged) == []
