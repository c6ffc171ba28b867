"""A trade's funding in trades.csv and the report (SPEC 6): the payments of the
settlements its position held, also one at the very time of its opening or closing
fill. On 1h candles a fill is stamped at its candle's close and the settlement at that
close comes after it (feeds.historical), so the settlement is on the new position."""

import json
import sqlite3
from pathlib import Path

import pytest

from tests.plans.helpers import (
    HOUR,
    backtest,
    exported,
    hour,
    run_main,
    write_candles,
    write_plan,
)

FLAT = (100.0, 101.0, 99.0, 100.0)
T0_MS = 1_709_251_200_000  # 2024-03-01T00:00:00Z


@pytest.fixture
def workdir(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PERPS_BOT__ACCOUNT__DEFAULT_FUNDING_RATE", "0.0001")
    return workdir


def _payments(workdir: Path) -> list[tuple[int, float, float]]:
    with sqlite3.connect(workdir / "bt.sqlite") as con:
        return con.execute("SELECT ts, position, payment FROM funding ORDER BY ts").fetchall()


def _report_funding(workdir: Path, capsys: pytest.CaptureFixture[str]) -> float:
    out = workdir / "report.json"
    result = run_main(["report", "--db", str(workdir / "bt.sqlite"), "--format", "json",
                       "--out", str(out)], capsys)  # fmt: skip
    assert result.code == 0, result.err
    return float(json.loads(out.read_text())["metrics"]["funding"])


def test_a_settlement_at_the_opening_fills_time_is_the_new_trades(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A long filled in the 07:00-08:00 candle (stamped 08:00) holds the 08:00
    settlement and is closed at 11:00: the payment is its funding (it was in no trade)."""
    candles = write_candles(workdir / "btc.csv", [FLAT] * 12)
    plan = write_plan(workdir / "plan.csv", [
        {"id": "a", "side": "long", "size": 1, "valid_from": hour(7)},
        {"id": "b", "side": "flat", "valid_from": hour(10)},
    ])  # fmt: skip
    result = backtest(workdir, candles, plan, capsys)
    assert result.code == 0, result.err
    ((ts, position, payment),) = _payments(workdir)
    assert position == 1.0 and payment == pytest.approx(-0.01, rel=1e-2)
    (trade,) = exported(workdir, capsys, "trades.csv")
    assert trade["open_time"].startswith("2024-03-01T08:00:00") and ts == HOUR * 8 + T0_MS
    assert float(trade["funding"]) == pytest.approx(payment, abs=1e-12)
    assert _report_funding(workdir, capsys) == pytest.approx(payment, abs=1e-9)


def test_a_settlement_after_a_flip_is_the_opened_trades_not_the_closed_ones(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A short from 03:00 flipped long by a fill stamped 08:00: the 08:00 settlement
    is paid by the long (trade 2), not received by the short (trade 1)."""
    candles = write_candles(workdir / "btc.csv", [FLAT] * 12)
    plan = write_plan(workdir / "plan.csv", [
        {"id": "a", "side": "short", "size": 1, "valid_from": hour(2)},
        {"id": "b", "side": "long", "size": 2, "valid_from": hour(7)},
        {"id": "c", "side": "flat", "valid_from": hour(10)},
    ])  # fmt: skip
    result = backtest(workdir, candles, plan, capsys)
    assert result.code == 0, result.err
    ((_, position, payment),) = _payments(workdir)
    assert position > 0 and payment < 0
    short, long = exported(workdir, capsys, "trades.csv")
    assert (short["side"], long["side"]) == ("short", "long")
    assert short["close_time"] == long["open_time"]
    assert float(short["funding"]) == 0.0
    assert float(long["funding"]) == pytest.approx(payment, abs=1e-12)
