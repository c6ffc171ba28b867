"""Backtests on candles longer than a minute (SPEC 6, 3, 7): the equity curve has a row
every simulated minute, valued on each candle's documented price path."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.backtest.candle_files import ms
from tests.plans.helpers import backtest, exported, hour, write_candles, write_plan

MINUTE = 60_000

# hourly bars (open, high, low, close); a long of 1 entered at bar 1's open
BARS = [
    (100.0, 101.0, 99.0, 100.0),  # 0: the plan row acts at its close
    (100.0, 101.0, 99.0, 100.0),  # 1: the long fills at the open (stamped at the close)
    (100.0, 104.0, 97.0, 102.0),  # 2: open 02:00, low 02:20, high 02:40, close 03:00
    (102.0, 103.0, 101.0, 102.0),  # 3
]


def _at(rows: list[dict[str, str]], iso: str) -> dict[str, float]:
    ts = ms(iso)
    (row,) = [r for r in rows if ms(r["timestamp"]) == ts]
    return {k: float(v) for k, v in row.items() if k != "timestamp"}


def test_hourly_candles_have_an_equity_row_every_minute_on_the_price_path(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    candles = write_candles(workdir / "btc.csv", BARS)
    plan = write_plan(workdir / "plan.csv", [{"id": "a", "side": "long", "size": 1,
                                              "valid_from": hour(1)}])  # fmt: skip
    result = backtest(workdir, candles, plan, capsys)
    assert result.code == 0, result.err
    rows = exported(workdir, capsys, "equity.csv")
    times = sorted({ms(r["timestamp"]) for r in rows})
    start = datetime(2024, 3, 1, tzinfo=UTC).timestamp() * 1000
    # every minute from the first candle's open to the last close (the open itself
    # is the start: nothing has happened yet)
    assert times == [int(start) + k * MINUTE for k in range(1, 4 * 60 + 1)]
    # the fill is stamped at bar 1's close: flat until then, the position from there on
    assert _at(rows, "2024-03-01T01:30:00Z")["unrealized_pnl"] == 0.0
    entry = 102.0 - _at(rows, "2024-03-01T03:00:00Z")["unrealized_pnl"]  # marked at the close
    assert entry == pytest.approx(100.0, rel=2e-3)
    # bar 2's path: open 100 (02:00), low 97 (02:20), high 104 (02:40), close 102 (03:00),
    # straight lines between its points
    for iso, price in [
        ("2024-03-01T02:20:00Z", 97.0),
        ("2024-03-01T02:10:00Z", 98.5),
        ("2024-03-01T02:40:00Z", 104.0),
        ("2024-03-01T02:50:00Z", 103.0),
    ]:
        row = _at(rows, iso)
        assert row["unrealized_pnl"] == pytest.approx(price - entry, abs=1e-9), iso
        assert row["equity"] == pytest.approx(row["cash"] + row["unrealized_pnl"], abs=1e-9)


def _five_minute_candles(path: Path, hours: int) -> Path:
    """Flat 5-minute BTC candles (100, 100.5, 99.5, 100) from T0."""
    with path.open("w") as fh:
        fh.write("timestamp,open,high,low,close,volume\n")
        for k in range(hours * 12):
            ts = ms("2024-03-01T00:00:00Z") + k * 5 * MINUTE
            fh.write(f"{ts},100,100.5,99.5,100,10\n")
    return path


def test_an_hourly_mark_wick_is_not_given_to_the_last_five_minute_candle_of_the_hour(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """When in the hour the mark touched 94 is unknown: the 5-minute candle closing with
    the mark candle cannot know the wick happened inside it, so a mark stop at 95 does
    not fire there (the last price never went below 99.5)."""
    candles = _five_minute_candles(workdir / "btc.csv", 3)
    marks = write_candles(
        workdir / "mark.csv",
        [(100.0, 100.4, 99.6, 100.0), (100.0, 100.4, 94.0, 100.0), (100.0, 100.4, 99.6, 100.0)],
    )
    plan = write_plan(workdir / "plan.csv", [{"id": "a", "side": "long", "size": 1, "stop": 95,
                                              "valid_from": hour(0)}])  # fmt: skip
    result = backtest(workdir, candles, plan, capsys, "--mark", str(marks))
    assert result.code == 0, result.err
    assert exported(workdir, capsys, "trades.csv") == []  # still long at the end


def _daily_candles(path: Path, bars: list[tuple[float, float, float, float]]) -> Path:
    with path.open("w") as fh:
        fh.write("timestamp,open,high,low,close,volume\n")
        for k, (o, h, lo, c) in enumerate(bars):
            fh.write(f"2024-03-{k + 1:02d}T00:00:00Z,{o},{h},{lo},{c},10\n")
    return path


def test_funding_inside_a_daily_candle_settles_on_the_position_held_then(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """8h funding on 1d candles: the settlements at 08:00 and 16:00 fall inside the
    candle. A long filled at the candle's open (00:00) holds them, priced on the path:
    the low (95) at 08:00, the high (110) at 16:00."""
    import sqlite3

    monkeypatch.setenv("PERPS_BOT__ACCOUNT__DEFAULT_FUNDING_RATE", "0.0001")
    candles = _daily_candles(
        workdir / "btc.csv",
        [(100.0, 101.0, 99.0, 100.0), (100.0, 110.0, 95.0, 105.0), (105.0, 106.0, 104.0, 105.0)],
    )
    plan = write_plan(workdir / "plan.csv", [
        {"id": "a", "side": "long", "size": 1, "valid_from": "2024-03-02T00:00:00Z"},
        {"id": "b", "side": "flat", "valid_from": "2024-03-03T00:00:00Z"},
    ])  # fmt: skip
    result = backtest(workdir, candles, plan, capsys)
    assert result.code == 0, result.err
    with sqlite3.connect(workdir / "bt.sqlite") as con:
        rows = con.execute("SELECT ts, mark, position, payment FROM funding ORDER BY ts").fetchall()
    day = 86_400_000
    d2 = ms("2024-03-02T00:00:00Z")
    held = {ts: (mark, position, payment) for ts, mark, position, payment in rows}
    assert held[d2 + day // 3][:2] == (95.0, 1.0)  # 08:00: the path's low, the long held
    assert held[d2 + 2 * day // 3][:2] == (110.0, 1.0)  # 16:00: the path's high
    assert held[d2 + day // 3][2] == pytest.approx(-95.0 * 1e-4)
    (trade,) = exported(workdir, capsys, "trades.csv")
    # the long opened at the day's open and closed at the next day's open
    assert trade["open_time"].startswith("2024-03-02T00:00:00")
    assert trade["close_time"].startswith("2024-03-03T00:00:00")
    payments = [p for ts, _, _, p in rows if d2 < ts <= d2 + day]
    assert float(trade["funding"]) == pytest.approx(sum(payments))
    assert len(payments) == 3
