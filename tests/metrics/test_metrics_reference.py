"""The report's metrics against references written from their definitions (SPEC 6,
metrics.definitions), over random curves and trades: irregular timestamps, gaps longer
than a period, duplicate timestamps, wiped-out accounts, any chunking."""

import itertools
import math
from statistics import NormalDist

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from perps_bot.metrics.equity import EquityAccumulator
from perps_bot.metrics.stats import equity_metrics, trade_metrics
from perps_bot.metrics.trade_records import Trade

PERIOD = 10
YEAR_PERIODS = 365 * 86_400_000 / PERIOD


def _samples(ts: list[int], eq: list[float]) -> list[float]:
    """The last equity at or before each t0 + k * P up to the last row."""
    out = []
    k = 0
    while ts[0] + k * PERIOD <= ts[-1]:
        grid = ts[0] + k * PERIOD
        out.append([e for t, e in zip(ts, eq, strict=True) if t <= grid][-1])
        k += 1
    return out


def _reference(ts: list[int], eq: list[float]) -> dict[str, float | None]:
    s = _samples(ts, eq)
    r = [b / a - 1.0 for a, b in itertools.pairwise(s) if a > 0]
    n = len(r)
    peak, max_dd = -math.inf, 0.0
    for e in eq:
        peak = max(peak, e)
        if peak > 0:
            max_dd = max(max_dd, (peak - e) / peak)
    out: dict[str, float | None] = {"max_drawdown": max_dd, "sharpe": None, "sortino": None}
    out["psr"] = None
    if n < 2:
        return out
    mean = sum(r) / n
    m2 = sum((x - mean) ** 2 for x in r) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in r) / (n - 1))
    down = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / (n - 1))
    if std > 1e-9:
        out["sharpe"] = mean / std * math.sqrt(YEAR_PERIODS)
        skew = sum((x - mean) ** 3 for x in r) / n / m2**1.5
        kurt = sum((x - mean) ** 4 for x in r) / n / m2**2
        sr = mean / std
        var = 1 - skew * sr + (kurt - 1) / 4 * sr * sr
        out["psr"] = NormalDist().cdf(sr * math.sqrt(n - 1) / math.sqrt(var)) if var > 0 else None
    if down > 1e-9:
        out["sortino"] = mean / down * math.sqrt(YEAR_PERIODS)
    return out


curves = st.lists(
    st.tuples(
        st.integers(0, 25),  # time step: 0 (a duplicate time) to several periods (a gap)
        # cents; now and then wiped out (equity at or below 0)
        st.one_of(st.integers(5_000, 15_000), st.integers(-2_000, 500)).map(lambda c: c / 100),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(curve=curves, chunk=st.integers(1, 8))
def test_equity_metrics_match_their_definitions(curve: list[tuple[int, float]], chunk: int) -> None:
    ts = list(np.cumsum([step for step, _ in curve]))
    eq = [e for _, e in curve]
    acc = EquityAccumulator(PERIOD)
    for i in range(0, len(ts), chunk):
        acc.add(np.asarray(ts[i : i + chunk], dtype=np.int64), np.asarray(eq[i : i + chunk]))
    got = equity_metrics(acc.finish(), 100.0, int(ts[-1] - ts[0]), PERIOD)
    want = _reference([int(t) for t in ts], eq)
    assert math.isclose(got["max_drawdown"], want["max_drawdown"], rel_tol=1e-12, abs_tol=1e-12)
    for name in ("sharpe", "sortino", "psr"):
        if want[name] is None or got[name] is None:  # std at float noise: either may be None
            continue
        assert math.isclose(got[name], want[name], rel_tol=1e-6, abs_tol=1e-9), name
    assert math.isclose(got["return_pct"], (eq[-1] - 100.0) / 100.0 * 100.0, abs_tol=1e-9)


def _trade(i: int, pnl: float, duration_s: int) -> Trade:
    return Trade(
        i, "BTC-PERP", "long", 0, duration_s * 1000, 1.0, 100.0, 100.0, pnl, 0.0, 0.0, pnl,
        "signal", None, None, None, False,
    )  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.one_of(st.just(0.0), st.floats(-50, 50)), st.integers(0, 10**6)),
        max_size=30,
    )
)
def test_trade_metrics_match_their_definitions(rows: list[tuple[float, int]]) -> None:
    trades = [_trade(i + 1, p, d) for i, (p, d) in enumerate(rows)]
    got = trade_metrics(trades)
    pnl = [p for p, _ in rows]
    wins = [p for p in pnl if p > 0]
    losses = [p for p in pnl if p < 0]
    n = len(pnl)
    assert got["trades"] == n
    assert got["win_rate"] == (len(wins) / n if n else None)
    assert math.isclose(got["total_pnl"], sum(pnl), abs_tol=1e-9)
    if losses:
        assert math.isclose(got["profit_factor"], sum(wins) / -sum(losses), rel_tol=1e-12)
    else:
        assert got["profit_factor"] is None  # all winners: undefined, never infinity
    if wins and losses:
        rr = (sum(wins) / len(wins)) / abs(sum(losses) / len(losses))
        assert math.isclose(got["risk_reward"], rr, rel_tol=1e-12)
    else:
        assert got["risk_reward"] is None
    longest = streak = 0
    for p in pnl:
        streak = streak + 1 if p < 0 else 0
        longest = max(longest, streak)
    assert got["max_consecutive_losses"] == longest
    if n >= 2:
        mean = sum(pnl) / n
        std = math.sqrt(sum((p - mean) ** 2 for p in pnl) / (n - 1))
        if std > 1e-9:
            assert math.isclose(got["sqn"], math.sqrt(n) * mean / std, rel_tol=1e-9, abs_tol=1e-9)
    if n:
        assert math.isclose(got["expectancy"], sum(pnl) / n, abs_tol=1e-9)
        assert math.isclose(got["avg_trade_duration_s"], sum(d for _, d in rows) / n)


@settings(max_examples=200, deadline=None)
@given(
    stamps=st.lists(st.integers(-40 * 86_400_000, 400 * 86_400_000), min_size=1, max_size=60),
    chunk=st.integers(1, 8),
)
def test_monthly_returns_match_the_calendar(stamps: list[int], chunk: int) -> None:
    """Each UTC month's last equity over the previous month's (the initial balance for
    the first): rows on both sides of month ends, of year ends, months with no row."""
    from datetime import UTC, datetime

    from perps_bot.metrics.breakdowns import MonthlyReturns

    t0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
    ts = sorted(t0 + s for s in stamps)
    eq = [100.0 + i for i in range(len(ts))]
    months = MonthlyReturns()
    for i in range(0, len(ts), chunk):
        months.add(np.asarray(ts[i : i + chunk], dtype=np.int64), np.asarray(eq[i : i + chunk]))
    last: dict[str, float] = {}
    for t, e in zip(ts, eq, strict=True):
        last[datetime.fromtimestamp(t / 1000, UTC).strftime("%Y-%m")] = e
    want, previous = [], 50.0
    for month in sorted(last):
        want.append((month, previous, last[month]))
        previous = last[month]
    got = [(m.month, m.start_equity, m.end_equity) for m in months.finish(50.0)]
    assert got == want
