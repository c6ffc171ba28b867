"""A backtest of several symbols on candles longer than a minute (SPEC 3, 6, 7): the
symbols' candles that close together are walked together, in time order of their
path points and funding settlements. The second symbol's fills and settlements were
booked after the first symbol's candle had closed (times went backwards in the
journal, the fills and the funding), and the minute rows inside the candle followed
the first symbol's path only, without the second symbol's new position."""

import json
import sqlite3
from itertools import pairwise
from pathlib import Path

import pytest

from tests.backtest.candle_files import daily, ms
from tests.plans.helpers import exported, run_main, write_plan

DAY = 86_400_000


@pytest.fixture
def workdir(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PERPS_BOT__ACCOUNT__DEFAULT_FUNDING_RATE", "0.0001")
    return workdir


def _two_symbol_run(workdir: Path, capsys: pytest.CaptureFixture[str], portfolios: int = 1) -> None:
    """BTC and ETH on 1d candles, 8h funding; a long of 1 of each from 2024-03-02's
    open to 2024-03-03's open (one plan, or one plan per symbol: two portfolios and
    their account). Day 2's paths: BTC 100 (00:00), 95 (08:00), 110 (16:00), 105; ETH
    50, 45, 60, 55."""
    btc = daily(workdir / "btc.csv", [(100.0, 101.0, 99.0, 100.0), (100.0, 110.0, 95.0, 105.0),
                                       (105.0, 106.0, 104.0, 105.0)])  # fmt: skip
    eth = daily(workdir / "eth.csv", [(50.0, 51.0, 49.0, 50.0), (50.0, 60.0, 45.0, 55.0),
                                       (55.0, 56.0, 54.0, 55.0)])  # fmt: skip
    rows: list[dict[str, object]] = [
        {"id": "a", "side": "long", "size": 1, "valid_from": "2024-03-02T00:00:00Z"},
        {"id": "b", "side": "flat", "valid_from": "2024-03-03T00:00:00Z"},
        {"id": "e", "symbol": "ETH-PERP", "side": "long", "size": 1,
         "valid_from": "2024-03-02T00:00:00Z"},
        {"id": "f", "symbol": "ETH-PERP", "side": "flat", "valid_from": "2024-03-03T00:00:00Z"},
    ]  # fmt: skip
    if portfolios == 1:
        strategies = ["--strategy", "plan", "--param",
                      f"file={write_plan(workdir / 'plan.csv', rows)}"]  # fmt: skip
    else:
        btc_plan = write_plan(workdir / "btc.plan.csv", rows[:2])
        eth_plan = write_plan(workdir / "eth.plan.csv", rows[2:])
        strategies = ["--strategy", "plan", "--strategy", "plan", "--param",
                      f"plan.file={btc_plan}", "--param", f"plan-2.file={eth_plan}"]  # fmt: skip
    result = run_main(
        ["backtest", "--data", str(btc), "--symbol", "BTC-PERP", "--data", str(eth),
         "--symbol", "ETH-PERP", *strategies, "--order-size", "1", "--seed", "1",
         "--db", str(workdir / "bt.sqlite"), "--no-progress"],
        capsys,
    )  # fmt: skip
    assert result.code == 0, result.err


def _non_decreasing(times: list[int]) -> bool:
    return all(a <= b for a, b in pairwise(times))


def test_event_times_never_go_backwards_and_funding_is_charged_on_the_position_held(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _two_symbol_run(workdir, capsys)
    with sqlite3.connect(workdir / "bt.sqlite") as con:
        fills = con.execute("SELECT ts, symbol FROM fills ORDER BY seq").fetchall()
        funding = con.execute(
            "SELECT ts, symbol, mark, position FROM funding ORDER BY rowid"
        ).fetchall()
    journal = [json.loads(line) for line in (workdir / "logs/events.backtest.jsonl").open()]
    assert _non_decreasing([e["ts"] for e in journal]), [(e["type"], e["ts"]) for e in journal]
    assert _non_decreasing([ts for ts, _ in fills]), fills
    assert _non_decreasing([row[0] for row in funding]), funding
    d2 = ms("2024-03-02T00:00:00Z")
    # both longs filled at day 2's open; each settlement of day 2 charged on them, at
    # its own symbol's path
    assert [f for f in fills if f[0] == d2] == [(d2, "BTC-PERP"), (d2, "ETH-PERP")]
    held = {(ts, symbol): (mark, position) for ts, symbol, mark, position in funding}
    assert held[d2 + DAY // 3, "BTC-PERP"] == (95.0, 1.0)
    assert held[d2 + DAY // 3, "ETH-PERP"] == (45.0, 1.0)
    assert held[d2 + 2 * DAY // 3, "BTC-PERP"] == (110.0, 1.0)
    assert held[d2 + 2 * DAY // 3, "ETH-PERP"] == (60.0, 1.0)


@pytest.mark.parametrize("portfolios", [1, 2])
def test_minute_rows_value_every_symbol_on_its_own_path(
    workdir: Path, capsys: pytest.CaptureFixture[str], portfolios: int
) -> None:
    """With two portfolios the rows are the account's (the report's run)."""
    _two_symbol_run(workdir, capsys, portfolios)
    (btc, eth) = sorted(exported(workdir, capsys, "trades.csv"), key=lambda t: t["symbol"])
    entries = float(btc["entry_price"]), float(eth["entry_price"])
    rows = exported(workdir, capsys, "equity.csv")
    assert _non_decreasing([ms(r["timestamp"]) for r in rows])

    def unrealized(iso: str) -> list[float]:
        return [float(r["unrealized_pnl"]) for r in rows if r["timestamp"].startswith(iso)]

    # 12:00 is half way from the low (08:00) to the high (16:00) on both paths
    assert unrealized("2024-03-02T12:00:00") == pytest.approx(
        [(102.5 - entries[0]) + (52.5 - entries[1])], abs=1e-9
    )
    # 08:00 (a settlement): both at their lows
    assert unrealized("2024-03-02T08:00:00") == pytest.approx(
        [(95.0 - entries[0]) + (45.0 - entries[1])], abs=1e-9
    )
    # the row at 08:00 holds both symbols' payments there
    minutes = ("2024-03-02T08:00", "2024-03-02T08:01")
    cash = [float(r["cash"]) for r in rows if r["timestamp"][:16] in minutes]
    assert len(cash) == 2 and cash[0] == cash[1], cash
    # both closed at day 3's open: flat from then on
    d3 = ms("2024-03-03T00:00:00Z")
    later = [float(r["unrealized_pnl"]) for r in rows if ms(r["timestamp"]) > d3]
    assert later and all(u == 0.0 for u in later)
