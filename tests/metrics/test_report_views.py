"""Breakdowns, monthly returns, data warnings, open positions and the buy-and-hold line."""

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perps_bot.metrics import Trade, build_report
from perps_bot.metrics.breakdowns import MonthlyReturns, breakdowns, exit_rule
from perps_bot.metrics.positions import buy_and_hold
from perps_bot.metrics.stats import trade_metrics
from perps_bot.metrics.warnings import data_warnings
from perps_bot.storage import RunStore
from tests.metrics.metrics_builders import DAY, EASY_PROMOTION, HOUR, T0, RunBuilder

SYMBOLS = ("BTC-PERP", "ETH-PERP", "SOL-PERP")
REASONS = ("mean_reversion exit z=0.13", "mean_reversion exit z=-1.5e-3", "stop", "end_of_run")


def _trade(i: int, symbol: str, side: str, net: float, hours: int, reason: str) -> Trade:
    return Trade(
        trade_id=i, symbol=symbol, side=side, open_ts=T0 + i * DAY,
        close_ts=T0 + i * DAY + hours * HOUR, size=1.0, entry_price=100.0, exit_price=101.0,
        gross_pnl=net, fees=0.0, funding=0.0, net_pnl=net, exit_reason=reason,
        r_multiple=None, mae=None, mfe=None, is_liquidation=False,
    )  # fmt: skip


trades_strategy = st.lists(
    st.tuples(
        st.sampled_from(SYMBOLS),
        st.sampled_from(("long", "short")),
        st.floats(-1e4, 1e4, allow_nan=False).filter(lambda v: abs(v) > 1e-9 or v == 0.0),
        st.integers(0, 48),
        st.sampled_from(REASONS),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(rows=trades_strategy)
def test_every_breakdown_partitions_the_trades(
    rows: list[tuple[str, str, float, int, str]],
) -> None:
    trades = [_trade(i, *row) for i, row in enumerate(rows, start=1)]
    total = trade_metrics(trades)
    for by, groups in breakdowns(trades).items():
        assert sum(g.trades for g in groups) == len(trades), by
        assert sum(g.net_pnl for g in groups) == pytest.approx(total["total_pnl"], abs=1e-6)
        wins = sum(round(g.win_rate * g.trades) for g in groups)
        assert wins == sum(1 for t in trades if t.net_pnl > 0)
        assert [g.key for g in groups] == sorted({g.key for g in groups})
        durations = sum(g.avg_duration_s * g.trades for g in groups)
        assert durations == pytest.approx(sum(t.duration_s for t in trades))


def test_exit_rules_drop_indicator_readings() -> None:
    assert exit_rule("mean_reversion exit z=0.13") == "mean_reversion exit z"
    assert exit_rule("mean_reversion long rsi=28.4") == "mean_reversion long rsi"
    assert exit_rule("sma_cross up 10/30") == "sma_cross up 10/30"
    groups = breakdowns([_trade(1, "BTC-PERP", "long", 1.0, 1, r) for r in REASONS])
    assert [(g.key, g.trades) for g in groups["exit_reason"]] == [
        ("end_of_run", 1), ("mean_reversion exit z", 2), ("stop", 1),
    ]  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.integers(1, 20 * DAY // 1000), min_size=1, max_size=80),
    growth=st.lists(st.floats(0.5, 1.5), min_size=80, max_size=80),
    chunk=st.integers(1, 30),
)
def test_monthly_returns_compound_to_the_whole_return_in_any_chunking(
    steps: list[int], growth: list[float], chunk: int
) -> None:
    ts = T0 + np.cumsum(np.asarray(steps, dtype=np.int64) * 1000)
    equity = 1_000.0 * np.cumprod(np.asarray(growth[: len(steps)]))
    whole, parts = MonthlyReturns(), MonthlyReturns()
    whole.add(ts, equity)
    for i in range(0, ts.size, chunk):
        parts.add(ts[i : i + chunk], equity[i : i + chunk])
    months = whole.finish(1_000.0)
    assert months == parts.finish(1_000.0)
    product = math.prod(1.0 + (m.return_pct or 0.0) / 100.0 for m in months)
    assert product == pytest.approx(equity[-1] / 1_000.0, rel=1e-9)
    labels = [m.month for m in months]
    assert labels == sorted(set(labels))
    assert labels[-1] == str(ts[-1].astype("datetime64[ms]").astype("datetime64[M]"))


@settings(max_examples=80, deadline=None)
@given(
    start=st.integers(-3 * DAY, 3 * DAY),
    steps=st.lists(st.sampled_from((0, 1, 999, HOUR, DAY - 1, DAY, 31 * DAY)), max_size=60),
    chunk=st.integers(1, 25),
)
def test_monthly_returns_keep_the_last_equity_of_every_month(
    start: int, steps: list[int], chunk: int
) -> None:
    """Against the definition: each row's month by calendar conversion, the last row
    of a month (in time order) gives its end equity."""
    ts = np.datetime64("2024-03-01", "ms").astype(np.int64) + start + np.cumsum([0, *steps])
    equity = 1_000.0 + np.arange(ts.size, dtype=np.float64)
    last: dict[str, float] = {}
    for t, e in zip(ts.astype("datetime64[ms]").astype("datetime64[M]"), equity, strict=True):
        last[str(t)] = float(e)
    monthly = MonthlyReturns()
    for i in range(0, ts.size, chunk):
        monthly.add(ts[i : i + chunk], equity[i : i + chunk])
    months = monthly.finish(1_000.0)
    assert [(m.month, m.end_equity) for m in months] == sorted(last.items())
    assert [m.start_equity for m in months] == [1_000.0, *(m.end_equity for m in months[:-1])]


def test_warnings_name_each_thin_metric_and_only_shown_ones() -> None:
    metrics = {"trades": 3, "win_rate": 0.5, "sharpe": -348.0, "sortino": None, "cagr": 9.9}
    found = {
        w.metric: w.reason for w in data_warnings(metrics, returns=1, days=2.0, sharpe_period="1d")
    }
    assert found == {
        "win_rate": "from 3 trades (fewer than 30)",
        "sharpe": "from 1 return of 1d (fewer than 30)",
        "cagr": "annualised from 2.00 days (less than 30)",
    }
    enough = data_warnings(
        {"trades": 30, "win_rate": 0.5, "sharpe": 1.0, "cagr": 0.1},
        returns=30, days=30.0, sharpe_period="1d",
    )  # fmt: skip
    assert enough == []


def test_two_day_run_reports_its_warnings_and_open_position(tmp_path: Path) -> None:
    with RunStore(tmp_path / "w.sqlite") as store:
        b = RunBuilder(store, "short", promotion=EASY_PROMOTION, end_ts=T0 + 2 * DAY)
        b.fill(T0 + HOUR, "buy", 1.0, 100.0)
        b.fill(T0 + 2 * HOUR, "sell", 1.0, 90.0, reason="stop")
        b.fill(T0 + 3 * HOUR, "sell", 2.0, 95.0, symbol="ETH-PERP")
        store.set_position("short", "ETH-PERP", -2.0, 95.0, T0 + 3 * HOUR)
        store.set_position("short", "BTC-PERP", 0.0, 0.0, T0 + 2 * HOUR)
        b.curve([(T0, 10_000.0), (T0 + DAY, 9_990.0), (T0 + 2 * DAY, 9_995.0)])
        store.put_plot_series(
            "short", "ETH-PERP", np.asarray([T0, T0 + 2 * DAY]), {"price": np.asarray([95.0, 93.5])}
        )
        report = build_report(store, b.done())
    data = report.as_dict()
    assert {w["metric"] for w in data["warnings"]} >= {"sharpe", "win_rate", "cagr"}
    [position] = data["portfolios"][0]["open_positions"]
    assert position == {
        "symbol": "ETH-PERP", "side": "short", "size": 2.0, "entry_price": 95.0,
        "open_time": "2024-01-01T03:00:00.000Z", "last_price": 93.5, "unrealized_pnl": 3.0,
    }  # fmt: skip
    assert [m["month"] for m in data["monthly_returns"]] == ["2024-01"]


def test_buy_and_hold_weights_symbols_equally_from_their_first_price() -> None:
    from perps_bot.storage import SymbolSeries

    prices = {
        "A": SymbolSeries(np.asarray([0, 10, 20]), {"price": np.asarray([100.0, 110.0, 120.0])}),
        "B": SymbolSeries(np.asarray([10, 20]), {"price": np.asarray([50.0, 25.0])}),
    }
    ts, equity = buy_and_hold(prices, 1_000.0)
    assert ts == [0, 10, 20]
    # B counts as cash until its first price; then half the balance follows each symbol
    assert equity == pytest.approx([1_000.0, 500 * 1.1 + 500 * 1.0, 500 * 1.2 + 500 * 0.5])
    assert buy_and_hold({}, 1_000.0) == ([], [])
