"""`perps-bot backtest` with a strategy that enters in `on_start` ("hold from the first
bar"): its orders go out at the first candle's open (priced there, the risk gate's data
fresh then) and fill at that open, instead of being denied STALE_MARKET_DATA for want
of any market data before the first candle."""

import json
import sqlite3
from pathlib import Path

import pytest

from tests.backtest.candle_files import daily, ms
from tests.plans.helpers import exported, run_main, write_candles

HOLD = "tests.backtest.start_strategy:HoldFromStart"
QUIET_HOLD = "tests.backtest.start_strategy:QuietHoldFromStart"
# hourly bars (open, high, low, close): the first open is far from every later price
BARS = [
    (100.0, 109.0, 99.0, 108.0),
    (110.0, 111.0, 109.0, 110.0),
    (110.0, 112.0, 109.0, 111.0),
    (111.0, 112.0, 110.0, 111.0),
]


def _backtest(
    workdir: Path, capsys: pytest.CaptureFixture[str], strategy: str, *args: str
) -> dict[str, object]:
    db = workdir / "bt.sqlite"
    result = run_main(
        ["backtest", *args, "--strategy", strategy, "--order-size", "1", "--seed", "1",
         "--db", str(db), "--no-progress"],
        capsys,
    )  # fmt: skip
    assert result.code == 0, result.err
    report = run_main(["report", "--db", str(db), "--format", "json"], capsys)
    assert report.code == 0, report.err
    metrics: dict[str, object] = json.loads(report.out)["account"]["metrics"]
    return metrics


@pytest.mark.parametrize("strategy", [HOLD, QUIET_HOLD])
def test_on_start_orders_fill_at_the_first_open(
    workdir: Path, capsys: pytest.CaptureFixture[str], strategy: str
) -> None:
    candles = write_candles(workdir / "btc.csv", BARS)
    metrics = _backtest(workdir, capsys, strategy, "--data", str(candles),
                        "--symbol", "BTC-PERP", "--param", "exit_at=3")  # fmt: skip
    assert metrics["denials"] == {}
    (trade,) = exported(workdir, capsys, "trades.csv")
    assert trade["side"] == "long"
    # bought at the first candle's open (plus half the spread and the slippage), not
    # at the second's; the fill carries the first candle's close time
    assert float(trade["entry_price"]) == pytest.approx(100.0, rel=2e-3)
    assert trade["open_time"].startswith("2024-03-01T01:00:00")
    assert float(trade["exit_price"]) == pytest.approx(111.0, rel=2e-3)  # bar 3's open


def test_on_start_position_pays_funding_inside_the_first_day(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Day candles: the first one is walked in parts around its 08:00 and 16:00
    settlements; the position bought at its open pays both."""
    monkeypatch.setenv("PERPS_BOT__ACCOUNT__DEFAULT_FUNDING_RATE", "0.001")
    candles = daily(workdir / "btc.csv", [(100.0, 101.0, 99.0, 100.0)] * 3)
    metrics = _backtest(workdir, capsys, HOLD, "--data", str(candles), "--symbol", "BTC-PERP")
    assert metrics["denials"] == {}
    with sqlite3.connect(workdir / "bt.sqlite") as con:
        fills = con.execute("SELECT ts, price FROM fills").fetchall()
        funding = con.execute("SELECT ts, position FROM funding ORDER BY ts").fetchall()
    ((_, price),) = fills
    assert price == pytest.approx(100.0, rel=2e-3)
    first_day = [(ts, pos) for ts, pos in funding if ts < ms("2024-03-02T00:00:00Z")]
    assert first_day == [(ms("2024-03-01T08:00:00Z"), 1.0), (ms("2024-03-01T16:00:00Z"), 1.0)]


def test_on_start_orders_of_two_symbols(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    btc = write_candles(workdir / "btc.csv", BARS)
    eth = write_candles(workdir / "eth.csv", [(o / 10, h / 10, lo / 10, c / 10)
                                              for o, h, lo, c in BARS])  # fmt: skip
    metrics = _backtest(workdir, capsys, HOLD, "--data", str(btc), "--symbol", "BTC-PERP",
                        "--data", str(eth), "--symbol", "ETH-PERP",
                        "--param", "exit_at=3")  # fmt: skip
    assert metrics["denials"] == {}
    trades = {t["symbol"]: t for t in exported(workdir, capsys, "trades.csv")}
    assert float(trades["BTC-PERP"]["entry_price"]) == pytest.approx(100.0, rel=2e-3)
    assert float(trades["ETH-PERP"]["entry_price"]) == pytest.approx(10.0, rel=2e-3)
