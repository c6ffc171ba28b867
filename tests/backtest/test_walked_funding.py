"""Funding settlements inside long candles (SPEC 3, 7): a 1d backtest with 8h funding
walks each candle to its 08:00 and 16:00 settlements (orchestrator.long_candles). A
strategy that acts on a settlement there trades at that time, on the candle's path."""

import sqlite3
from pathlib import Path

import pytest

from tests.backtest.candle_files import daily, ms
from tests.plans.helpers import Result, exported, run_main

H8 = 8 * 3_600_000


def _funding(path: Path, rates: dict[str, float], default: float, days: int) -> Path:
    """8h funding rows from 2024-03-01 00:00 for `days` days: `rates` at their times,
    `default` elsewhere."""
    start = ms("2024-03-01T00:00:00Z")
    with path.open("w") as fh:
        fh.write("timestamp,open,high,low,close,volume\n")
        wanted = {ms(iso): rate for iso, rate in rates.items()}
        for k in range(3 * days + 1):
            rate = wanted.get(start + k * H8, default)
            fh.write(f"{start + k * H8},{rate},{rate},{rate},{rate},0\n")
    return path


def _carry(workdir: Path, capsys: pytest.CaptureFixture[str], funding: Path) -> Result:
    """funding_carry (short at a rate >= 0.0005, held while > 0.0001) on four 1d candles."""
    candles = daily(workdir / "btc.csv", [(100.0, 101.0, 99.0, 100.0),
                                           (100.0, 110.0, 95.0, 105.0),
                                           (105.0, 106.0, 104.0, 105.0),
                                           (105.0, 106.0, 104.0, 105.0)])  # fmt: skip
    return run_main(
        ["backtest", "--data", str(candles), "--funding", str(funding), "--symbol", "BTC-PERP",
         "--strategy", "funding_carry", "--order-size", "1", "--seed", "1",
         "--db", str(workdir / "bt.sqlite"), "--no-progress"],
        capsys,
    )  # fmt: skip


def _rows(workdir: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(workdir / "bt.sqlite") as con:
        return con.execute(sql).fetchall()


def test_an_order_at_a_settlement_inside_a_daily_candle_is_not_denied_as_stale(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The 08:00 settlement of 2024-03-02 is extreme: the short goes out then, on the
    candle's path (its low, 95, at 08:00), and holds the 16:00 settlement. It was denied
    STALE_MARKET_DATA: the risk gate's last data was the previous candle's close, 8h
    before, though the walk had priced the candle up to the settlement."""
    funding = _funding(workdir / "funding.csv", {"2024-03-02T08:00:00Z": 0.001}, 0.0002, 4)
    result = _carry(workdir, capsys, funding)
    assert result.code == 0, result.err
    assert _rows(workdir, "SELECT reason_code FROM denials") == []
    ((ts, side, size, price),) = _rows(workdir, "SELECT ts, side, size, price FROM fills")
    assert (ts, side, size) == (ms("2024-03-02T08:00:00Z"), "sell", 1.0)
    assert price == pytest.approx(95.0, rel=1e-3)
    held = _rows(workdir, "SELECT ts, position, mark FROM funding ORDER BY ts")
    assert held[0] == (ms("2024-03-02T16:00:00Z"), -1.0, 110.0)


def test_settlements_inside_the_first_candle_are_settled(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first candle (2024-03-01) holds the 08:00 and 16:00 settlements. The 08:00 one
    is extreme: the short goes out then and holds the 16:00 one, which is charged.
    Neither was scheduled (the schedule began at the first candle's close), so the
    strategy never heard of them and nothing was charged before 2024-03-02."""
    funding = _funding(workdir / "funding.csv", {"2024-03-01T08:00:00Z": 0.001}, 0.0002, 4)
    result = _carry(workdir, capsys, funding)
    assert result.code == 0, result.err
    assert "12 funding settlements (12 from file)" in result.out
    ((ts, side),) = _rows(workdir, "SELECT ts, side FROM fills")
    assert (ts, side) == (ms("2024-03-01T08:00:00Z"), "sell")
    held = _rows(workdir, "SELECT ts, position, rate, payment FROM funding ORDER BY ts")
    first_ts, position, rate, payment = held[0]
    assert (first_ts, position, rate) == (ms("2024-03-01T16:00:00Z"), -1.0, 0.0002)
    assert payment == pytest.approx(99.0 * 0.0002)  # the path: high at 08:00, low (99) at 16:00
    assert len(held) == 11  # every settlement from 16:00 on the first day to the end
    # the equity curve starts at the first candle's open, a row every minute
    times = [ms(row["timestamp"]) for row in exported(workdir, capsys, "equity.csv")]
    assert times[0] == ms("2024-03-01T00:01:00Z")
    assert len(set(times)) == 4 * 1440


def test_two_symbols_settle_inside_their_first_candles_walked_together(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """BTC and ETH: both shorts go out at the first day's 08:00 settlement and hold the
    16:00 one, in time order (the symbols' first candles walked together, though the
    first batch begins with settlements, not with a candle)."""
    import json

    funding = _funding(workdir / "funding.csv", {"2024-03-01T08:00:00Z": 0.001}, 0.0002, 4)
    eth = daily(workdir / "eth.csv", [(50.0, 51.0, 49.0, 50.0)] * 4)
    btc = daily(workdir / "btc.csv", [(100.0, 101.0, 99.0, 100.0)] * 4)
    result = run_main(
        ["backtest", "--data", str(btc), "--symbol", "BTC-PERP", "--data", str(eth),
         "--symbol", "ETH-PERP", "--funding", str(funding), "--funding", str(funding),
         "--strategy", "funding_carry", "--order-size", "1", "--seed", "1",
         "--db", str(workdir / "bt.sqlite"), "--no-progress"],
        capsys,
    )  # fmt: skip
    assert result.code == 0, result.err
    h8 = ms("2024-03-01T08:00:00Z")
    fills = _rows(workdir, "SELECT ts, symbol, side FROM fills ORDER BY seq")
    assert fills == [(h8, "BTC-PERP", "sell"), (h8, "ETH-PERP", "sell")]
    first = _rows(workdir, "SELECT ts, symbol, position FROM funding ORDER BY rowid")[:2]
    assert first == [(h8 + H8, "BTC-PERP", -1.0), (h8 + H8, "ETH-PERP", -1.0)]
    journal = [json.loads(line) for line in (workdir / "logs/events.backtest.jsonl").open()]
    times = [e["ts"] for e in journal]
    assert times == sorted(times)
