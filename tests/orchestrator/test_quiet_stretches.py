"""Quiet stretches (orchestrator.quiet) change nothing but speed: the same backtest run
three ways stores the same bytes (fills, orders, equity curve, funding, excursions,
trading states, chart samples) and journals the same events:

- stretches: the feed's CandleColumns walked stretch by stretch (the default);
- one by one: the same columns, but every stretch is refused, so every candle goes
  through `_on_event`;
- lists: the feed's batches turned into plain lists of events (the path every other
  feed takes).

The cases make every stage cut stretches short: stops, liquidations (isolated, high
leverage), risk state changes (tight drawdown and daily-loss limits), snapshots every
5 minutes of 1-minute candles, frequent log lines, chart thinning, and a mark series
with gaps (the XRP files)."""

import json
import math
import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perps_bot.cli.app import main
from perps_bot.domain import MarketEvent
from perps_bot.feeds.historical import CandleFeed
from perps_bot.orchestrator.quiet import QuietStretches, lowest_highest
from tests.conftest import SHARED_DATA
from tests.research.helpers import write_candles

#: every case runs one candle at a time too by refusing every stretch (a patched method)
pytestmark = pytest.mark.pure_python

XRP = SHARED_DATA / "futures"


CASES: dict[str, tuple[dict[str, str], list[str]]] = {
    "cross": ({}, ["--param", "fast=3", "--param", "slow=8"]),
    "mean_reversion": ({}, ["--strategy", "mean_reversion", "--param", "lookback=15"]),
    "mean_reversion_rsi_stops": (
        {},
        ["--strategy", "mean_reversion", "--param", "mode=rsi", "--param", "stop_pct=0.003"],
    ),
    "stops": ({}, ["--param", "fast=5", "--param", "slow=20", "--param", "stop_pct=0.002"]),
    "isolated_liquidations": (
        {
            "ACCOUNT__MARGIN_MODE": "isolated",
            "ACCOUNT__DEFAULT_LEVERAGE": "100",
            "RISK__MAX_LEVERAGE": "125",
            "RISK__MAX_POSITION_NOTIONAL": "1000000",
            "RISK__MAX_ORDER_NOTIONAL": "1000000",
        },
        ["--param", "fast=20", "--param", "slow=60", "--order-size", "400"],
    ),
    "risk_states": (
        {
            "RISK__MAX_DRAWDOWN": "0.03",
            "RISK__REDUCING_DRAWDOWN": "0.01",
            "RISK__DAILY_LOSS_LIMIT": "0.005",
            "RISK__MAX_POSITION_NOTIONAL": "1000000",
            "RISK__MAX_ORDER_NOTIONAL": "1000000",
        },
        ["--param", "fast=3", "--param", "slow=8", "--order-size", "300"],
    ),
    "sparse_snapshots": (
        {"RUN__EQUITY_INTERVAL": "5m", "RUN__LOG_EQUITY_INTERVAL": "15m"},
        ["--param", "fast=4", "--param", "slow=12"],
    ),
}


def _normalised_tables(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table but `runs` (paths, pid, the strategy's source fingerprint)."""
    out: dict[str, list[tuple[object, ...]]] = {}
    with sqlite3.connect(db) as con:
        run_ids = [r[0] for r in con.execute("SELECT run_id FROM runs")]
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in sorted(set(tables) - {"runs", "sqlite_sequence"}):
            rows = con.execute(f"SELECT * FROM {table}").fetchall()
            out[table] = [tuple("RUN" if v in run_ids else v for v in row) for row in rows]
    return out


def _journal(logs: Path) -> list[str]:
    lines = []
    for path in sorted(logs.glob("events.*.jsonl")):
        for line in path.read_text().splitlines():
            event = json.loads(line)
            event.pop("run_id", None)
            event.pop("latency_ms", None)
            event.pop("fingerprint", None)
            lines.append(json.dumps(event, sort_keys=True))
    return lines


def _run(
    tmp: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], args: list[str], tag: str
) -> tuple[dict[str, list[tuple[object, ...]]], list[str], str]:
    with monkeypatch.context() as m:
        for key, value in env.items():
            m.setenv(f"PERPS_BOT__{key}", value)
        m.setenv("PERPS_BOT__RUN__LOG_DIR", str(tmp / f"logs-{tag}"))
        m.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp / f"data-{tag}"))
        if tag == "one-by-one":  # every stretch refused: each candle through _on_event
            m.setattr(QuietStretches, "_stretch", lambda self, block, i, j: (i, [], 0.0))
        if tag == "lists":
            original = CandleFeed.batches

            async def as_lists(self: CandleFeed) -> AsyncIterator[Sequence[MarketEvent]]:
                async for batch in original(self):
                    yield list(batch)

            m.setattr(CandleFeed, "batches", as_lists)
        db = tmp / f"{tag}.sqlite"
        with pytest.raises(SystemExit) as exit_info:
            main(["backtest", *args, "--db", str(db), "--no-progress", "--seed", "3"])
        assert exit_info.value.code == 0
    return _normalised_tables(db), _journal(tmp / f"logs-{tag}"), tag


def _assert_same_three_ways(
    tmp: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], args: list[str]
) -> tuple[dict[str, list[tuple[object, ...]]], list[str]]:
    runs = [_run(tmp, monkeypatch, env, args, tag) for tag in ("stretches", "one-by-one", "lists")]
    tables, journal, _ = runs[0]
    for other_tables, other_journal, tag in runs[1:]:
        assert other_tables.keys() == tables.keys()
        for name in tables:
            assert other_tables[name] == tables[name], f"{name} differs ({tag})"
        assert other_journal == journal, tag
    return tables, journal


@pytest.mark.parametrize("case", sorted(CASES))
def test_stretches_store_what_one_candle_at_a_time_stores(
    case: str, in_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, params = CASES[case]
    data = write_candles(tmp_path / "c.feather", 6_000, seed=11, price=100.0)
    strategy = [] if "--strategy" in params else ["--strategy", "sma_cross"]
    args = ["--data", str(data), "--symbol", "ETH-PERP", *strategy, "--order-size", "2",
            *params]  # fmt: skip
    tables, journal = _assert_same_three_ways(tmp_path, monkeypatch, env, args)
    # the case did what it is here for
    fills = tables["fills"]
    assert len(fills) > (5 if case == "risk_states" else 20)  # a halt ends the trading
    if case == "isolated_liquidations":
        assert any("liquidation" in str(row) for row in fills)
    if case == "risk_states":
        states = [line for line in journal if '"type": "state_change"' in line]
        assert len(states) >= 2, "the risk gate did not change state"
    if case == "stops":
        assert any(re.search(r"\bstop\b", str(row)) for row in fills)


def test_stretches_with_a_mark_series_and_funding(
    in_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = [
        "--data", str(XRP / "XRP_USDT_USDT-5m-futures.feather"),
        "--mark", str(XRP / "XRP_USDT_USDT-1h-mark.feather"),
        "--funding", str(XRP / "XRP_USDT_USDT-8h-funding_rate.feather"),
        "--symbol", "XRP-PERP", "--strategy", "sma_cross", "--param", "fast=5",
        "--param", "slow=15", "--order-size", "100",
    ]  # fmt: skip
    tables, _ = _assert_same_three_ways(tmp_path, monkeypatch, {}, args)
    assert tables["funding"] and len(tables["fills"]) > 20


def test_a_mark_wick_past_the_liquidation_price_liquidates_on_every_path(
    in_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mark series whose low and high inside a candle went 12% past its close: a 20x
    isolated position (liquidation about 5% away) open over such a candle is liquidated
    there, though the mark closed back inside; the same on all three paths."""
    import numpy as np
    import pyarrow.feather as pa_feather

    data = write_candles(tmp_path / "c.feather", 6_000, seed=11, price=100.0)
    table = pa_feather.read_table(data)
    close = table.column("close").to_numpy()
    wicks = np.arange(100, 6_000, 200)
    low, high = table.column("low").to_numpy().copy(), table.column("high").to_numpy().copy()
    low[wicks], high[wicks] = close[wicks] * 0.88, close[wicks] * 1.12
    mark = tmp_path / "mark.feather"
    pa_feather.write_feather(table.set_column(2, "high", [high]).set_column(3, "low", [low]), mark)
    env, params = CASES["isolated_liquidations"]
    env = {**env, "ACCOUNT__DEFAULT_LEVERAGE": "20"}
    args = ["--data", str(data), "--mark", str(mark), "--symbol", "ETH-PERP",
            "--strategy", "sma_cross", *params]  # fmt: skip
    _assert_same_three_ways(tmp_path, monkeypatch, env, args)
    wick_closes = [int(table.column("date")[int(k)].as_py()) + 60_000 for k in wicks]
    with sqlite3.connect(tmp_path / "stretches.sqlite") as con:
        fills = con.execute(
            "SELECT ts, is_liquidation, position_after FROM fills ORDER BY seq"
        ).fetchall()
    held, liquidated = [], []
    for close_ts in wick_closes:  # the position when the candle's mark is checked
        before = [f for f in fills if f[0] < close_ts or (f[0] == close_ts and not f[1])]
        if before and before[-1][2] != 0.0:
            held.append(close_ts)
            liquidated.append(any(f[0] == close_ts and f[1] for f in fills))
    assert len(held) >= 3, "no position was open over a wick: the case is not exercised"
    assert all(liquidated), list(zip(held, liquidated, strict=True))


def test_daily_candles_with_funding_inside_them_store_the_same_on_every_path(
    in_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1d candles: 8h settlements fall inside each candle (held back and walked with
    it, orchestrator.long_candles) and every minute has an equity row on the path."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.feather as pa_feather

    minutes = write_candles(tmp_path / "m.feather", 300, seed=5, price=100.0)
    table = pa_feather.read_table(minutes)
    day = 86_400_000
    days = 1_704_067_200_000 + np.arange(300, dtype=np.int64) * day
    daily = tmp_path / "d.feather"
    pa_feather.write_feather(table.set_column(0, "date", [pa.array(days)]), daily)
    args = ["--data", str(daily), "--symbol", "ETH-PERP", "--strategy", "sma_cross",
            "--param", "fast=3", "--param", "slow=8", "--param", "stop_pct=0.0005",
            "--order-size", "2"]  # fmt: skip
    tables, _ = _assert_same_three_ways(tmp_path, monkeypatch, {}, args)
    assert len(tables["fills"]) > 20
    inside = [row for row in tables["funding"] if row[1] % day]  # 08:00 and 16:00
    assert inside and any(row[5] != 0.0 for row in inside)  # settled on a position


_prices = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, math.nan])
)


@given(
    lows=st.lists(_prices, min_size=1, max_size=40),
    highs=st.lists(_prices, min_size=1, max_size=40),
    data=st.data(),
)
def test_the_lowest_low_and_highest_high_are_min_and_max(
    lows: list[float], highs: list[float], data: st.DataObject
) -> None:
    """The catch-up's loop of compares gives the very floats min and max give (a NaN,
    which never compares below or above, and the sign of a zero included)."""
    size = min(len(lows), len(highs))
    start = data.draw(st.integers(0, size - 1))
    stop = data.draw(st.integers(start + 1, size))
    low, high = lowest_highest(lows, highs, start, stop)
    assert repr(low) == repr(min(lows[start:stop]))
    assert repr(high) == repr(max(highs[start:stop]))
