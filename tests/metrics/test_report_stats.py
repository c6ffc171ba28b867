"""Each metric recomputed by hand on small trade and equity series, with the edge cases."""

import math
import statistics
from pathlib import Path

import numpy as np
import pytest

from perps_bot.metrics import EquityAccumulator, Moments, build_report
from perps_bot.metrics.stats import cagr, normal_cdf
from perps_bot.storage import RunStore
from tests.metrics.metrics_builders import DAY, HOUR, MINUTE, T0, RunBuilder


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "s.sqlite")


def _trade(b: RunBuilder, ts: int, pnl: float, *, hours: int = 1, symbol: str = "BTC-PERP") -> None:
    """A long of size 1 from 100 to 100 + pnl, no fees."""
    b.fill(ts, "buy", 1.0, 100.0, symbol=symbol)
    b.fill(ts + hours * HOUR, "sell", 1.0, 100.0 + pnl, symbol=symbol)


def test_trade_metrics_by_hand(store: RunStore) -> None:
    b = RunBuilder(store, end_ts=T0 + 10 * DAY)
    pnls = [10.0, -5.0, 20.0, -5.0, -5.0, 0.0, -2.0]
    for i, p in enumerate(pnls):
        _trade(b, T0 + i * DAY, p, hours=i + 1)
    b.fill(T0 + 9 * DAY, "buy", 1.0, 100.0, fee=0.3)  # open at the end: not a trade
    b.fill(
        T0 + 9 * DAY, "sell", 1.0, 90.0, symbol="ETH-PERP", reason="liquidation", liquidation=True
    )
    m = build_report(store, b.done()).metrics

    assert m["trades"] == 7
    assert m["win_rate"] == pytest.approx(2 / 7)
    assert m["total_pnl"] == pytest.approx(sum(pnls))
    assert m["fees"] == 0.0 and m["funding"] == 0.0
    assert m["profit_factor"] == pytest.approx(30.0 / 17.0)
    assert m["expectancy"] == pytest.approx(sum(pnls) / 7)
    assert m["avg_trade_duration_s"] == pytest.approx(sum(range(1, 8)) / 7 * 3600)
    assert m["risk_reward"] == pytest.approx(15.0 / (17.0 / 4))
    assert m["sqn"] == pytest.approx(math.sqrt(7) * statistics.mean(pnls) / statistics.stdev(pnls))
    assert m["max_consecutive_losses"] == 2  # -5, -5 then 0 breaks the run
    assert m["liquidations"] == 1


def test_no_trades_gives_nulls_not_zeros(store: RunStore) -> None:
    b = RunBuilder(store, end_ts=T0 + DAY)
    b.curve([(T0, 10_000.0), (T0 + DAY, 10_000.0)])
    m = build_report(store, b.done()).metrics
    assert m["trades"] == 0
    assert m["total_pnl"] == 0.0 and m["fees"] == 0.0
    for name in (
        "win_rate",
        "profit_factor",
        "expectancy",
        "avg_trade_duration_s",
        "risk_reward",
        "sqn",
        "sharpe",
        "sortino",
        "psr",
        "calmar",
    ):
        assert m[name] is None, name
    assert m["max_consecutive_losses"] == 0
    assert m["max_drawdown"] == 0.0
    assert m["return_pct"] == 0.0
    assert m["cagr"] == 0.0
    assert m["liquidations"] == 0 and m["denials"] == {}


def test_no_losing_trade(store: RunStore) -> None:
    b = RunBuilder(store, end_ts=T0 + DAY)
    _trade(b, T0, 5.0)
    _trade(b, T0 + 2 * HOUR, 15.0)
    m = build_report(store, b.done()).metrics
    assert m["win_rate"] == 1.0
    assert m["profit_factor"] is None
    assert m["risk_reward"] is None
    assert m["max_consecutive_losses"] == 0
    assert m["sqn"] == pytest.approx(math.sqrt(2) * 10.0 / statistics.stdev([5.0, 15.0]))


def _daily_returns_by_hand(values: list[float]) -> list[float]:
    return [values[i] / values[i - 1] - 1 for i in range(1, len(values))]


def test_equity_metrics_by_hand_on_a_daily_curve(store: RunStore) -> None:
    values = [100.0, 110.0, 99.0, 108.9, 108.9 * 1.05, 100.0]
    b = RunBuilder(store, initial_balance=100.0, end_ts=T0 + 5 * DAY)
    b.curve([(T0 + i * DAY, v) for i, v in enumerate(values)])
    m = build_report(store, b.done()).metrics

    r = _daily_returns_by_hand(values)
    mean, sd = statistics.mean(r), statistics.stdev(r)
    assert m["sharpe"] == pytest.approx(mean / sd * math.sqrt(365))
    down = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / (len(r) - 1))
    assert m["sortino"] == pytest.approx(mean / down * math.sqrt(365))
    peak = 108.9 * 1.05
    assert m["max_drawdown"] == pytest.approx((peak - 100.0) / peak)
    assert m["return_pct"] == 0.0
    assert m["cagr"] == pytest.approx(0.0, abs=1e-12)
    assert m["calmar"] == pytest.approx(0.0, abs=1e-12)

    # PSR by hand: population skew / kurtosis, non-annualised SR with sample std
    n = len(r)
    m2 = sum((x - mean) ** 2 for x in r) / n
    g3 = sum((x - mean) ** 3 for x in r) / n / m2**1.5
    g4 = sum((x - mean) ** 4 for x in r) / n / m2**2
    sr = mean / sd
    z = sr * math.sqrt(n - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    assert m["psr"] == pytest.approx(0.5 * (1 + math.erf(z / math.sqrt(2))))


def test_intraday_rows_are_sampled_at_the_last_value_at_or_before_each_day(
    store: RunStore,
) -> None:
    b = RunBuilder(store, initial_balance=100.0, end_ts=T0 + 3 * DAY + HOUR)
    b.curve(
        [
            (T0 + 5 * MINUTE, 100.0),  # grid starts at the first row
            (T0 + 6 * HOUR, 150.0),  # intraday spike: only counts for drawdown
            (T0 + DAY, 101.0),
            (T0 + DAY + 5 * MINUTE, 103.0),  # exactly at grid point 1 -> 103
            (T0 + 2 * DAY, 99.0),
            (T0 + 2 * DAY + 5 * MINUTE + 1, 98.0),  # after grid point 2: next period
            (T0 + 3 * DAY + 5 * MINUTE, 104.0),  # grid point 3
            (T0 + 3 * DAY + HOUR, 500.0),  # trailing partial period: dropped
        ]
    )
    m = build_report(store, b.done()).metrics
    r = _daily_returns_by_hand([100.0, 103.0, 99.0, 104.0])
    assert m["sharpe"] == pytest.approx(statistics.mean(r) / statistics.stdev(r) * math.sqrt(365))
    assert m["max_drawdown"] == pytest.approx((150.0 - 98.0) / 150.0)
    assert m["return_pct"] == pytest.approx(400.0)  # last row: 500 vs initial 100


def test_sharpe_period_from_stored_config(store: RunStore) -> None:
    b = RunBuilder(
        store, initial_balance=100.0, end_ts=T0 + 4 * HOUR, promotion={"sharpe_period": "1h"}
    )
    values = [100.0, 101.0, 100.5, 102.0, 101.0]
    b.curve([(T0 + i * HOUR, v) for i, v in enumerate(values)])
    m = build_report(store, b.done()).metrics
    r = _daily_returns_by_hand(values)
    assert m["sharpe"] == pytest.approx(
        statistics.mean(r) / statistics.stdev(r) * math.sqrt(365 * 24)
    )


def test_one_day_of_data_has_no_sharpe(store: RunStore) -> None:
    b = RunBuilder(store, initial_balance=100.0, end_ts=T0 + DAY)
    b.curve([(T0 + i * MINUTE, 100.0 + (i % 7)) for i in range(24 * 60 + 1)])
    m = build_report(store, b.done()).metrics
    assert m["sharpe"] is None and m["sortino"] is None and m["psr"] is None
    assert m["max_drawdown"] == pytest.approx(6.0 / 106.0)
    assert m["cagr"] == pytest.approx(1.05**365 - 1)  # last row 100 + 1440 % 7


def test_flat_curve_has_zero_std_so_null_ratios(store: RunStore) -> None:
    b = RunBuilder(store, initial_balance=100.0, end_ts=T0 + 5 * DAY)
    b.curve([(T0 + i * DAY, 100.0) for i in range(6)])
    m = build_report(store, b.done()).metrics
    assert m["sharpe"] is None and m["sortino"] is None and m["psr"] is None


def test_no_negative_return_means_null_sortino(store: RunStore) -> None:
    b = RunBuilder(store, initial_balance=100.0, end_ts=T0 + 3 * DAY)
    b.curve([(T0 + i * DAY, v) for i, v in enumerate([100.0, 101.0, 103.0, 104.0])])
    m = build_report(store, b.done()).metrics
    assert m["sharpe"] is not None and m["sharpe"] > 0
    assert m["sortino"] is None


def test_cagr_and_calmar_by_hand(store: RunStore) -> None:
    b = RunBuilder(store, initial_balance=100.0, end_ts=T0 + 730 * DAY)
    b.curve([(T0, 100.0), (T0 + 100 * DAY, 80.0), (T0 + 730 * DAY, 121.0)])
    m = build_report(store, b.done()).metrics
    assert m["cagr"] == pytest.approx(0.1)
    assert m["max_drawdown"] == pytest.approx(0.2)
    assert m["calmar"] == pytest.approx(0.5)
    assert m["return_pct"] == pytest.approx(21.0)


def test_cagr_edge_cases() -> None:
    assert cagr(100.0, 0.0, DAY) == -1.0
    assert cagr(100.0, 110.0, 0) is None
    assert cagr(100.0, 1e6, 1) is None  # overflows: not representable
    assert normal_cdf(0.0) == 0.5


def test_denials_by_reason_code(store: RunStore) -> None:
    b = RunBuilder(store, end_ts=T0 + DAY)
    for code in ("STALE_MARKET_DATA", "MAX_LEVERAGE", "STALE_MARKET_DATA"):
        b.denial(T0, code)
    m = build_report(store, b.done()).metrics
    assert m["denials"] == {"MAX_LEVERAGE": 1, "STALE_MARKET_DATA": 2}
    assert list(m["denials"]) == ["MAX_LEVERAGE", "STALE_MARKET_DATA"]


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_chunking_does_not_change_the_report(tmp_path: Path, chunk: int) -> None:
    store = RunStore(tmp_path / "c.sqlite")
    rng = np.random.default_rng(7)
    b = RunBuilder(store, initial_balance=1000.0, end_ts=T0 + 10 * DAY)
    value = 1000.0
    for i in range(10 * 24 + 1):
        value *= 1 + rng.normal(0.0005, 0.01)
        b.equity(T0 + i * HOUR, value)
    run_id = b.done()
    whole = build_report(store, run_id, chunk=100_000)
    part = build_report(store, run_id, chunk=chunk)
    assert part.to_json() == whole.to_json()
    assert part.chart == whole.chart


def test_moments_merge_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    data = rng.standard_t(4, size=1000) * 0.01 + 0.001
    merged = Moments()
    for piece in np.array_split(data, [1, 2, 50, 51, 400, 999]):
        merged.add(piece)
    mean = data.mean()
    dev = data - mean
    assert merged.n == 1000
    assert merged.mean == pytest.approx(mean, rel=1e-12)
    assert merged.sample_std == pytest.approx(data.std(ddof=1), rel=1e-10)
    assert merged.skew == pytest.approx((dev**3).mean() / (dev**2).mean() ** 1.5, rel=1e-9)
    assert merged.kurtosis == pytest.approx((dev**4).mean() / (dev**2).mean() ** 2, rel=1e-9)


def test_accumulator_chart_buckets_keep_extremes() -> None:
    acc = EquityAccumulator(DAY, chart_start=0, chart_end=999, chart_buckets=10)
    ts = np.arange(1000, dtype=np.int64)
    eq = np.full(1000, 100.0)
    eq[150] = 50.0  # a dip inside bucket 1
    acc.add(ts[:500], eq[:500])
    acc.add(ts[500:], eq[500:])
    chart = acc.chart()
    assert len(chart.ts) == 10
    assert chart.low[1] == 50.0 and chart.close[1] == 100.0
    assert chart.drawdown[1] == pytest.approx(0.5)
    assert chart.ts[0] == 99 and chart.ts[-1] == 999
