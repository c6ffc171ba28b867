"""The report's metrics from trades and equity aggregates (definitions: definitions.py).

Pure functions over already-computed inputs, so each metric can be checked by
hand on a small series. Undefined ratios are None (JSON null), never 0 or inf:
a Sharpe of 0.0 would read as "no edge" when the truth is "not enough data".
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any

from perps_bot.domain import YEAR_MS
from perps_bot.metrics.equity import EquityStats, Moments
from perps_bot.metrics.trade_records import Trade

METRIC_NAMES: tuple[str, ...] = (
    "trades",
    "win_rate",
    "total_pnl",
    "fees",
    "funding",
    "return_pct",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "cagr",
    "profit_factor",
    "expectancy",
    "avg_trade_duration_s",
    "risk_reward",
    "sqn",
    "psr",
    "max_consecutive_losses",
    "liquidations",
    "denials",
)


def normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _sample_std(values: Sequence[float]) -> float | None:
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def trade_metrics(trades: Sequence[Trade]) -> dict[str, Any]:
    """Metrics over closed round trips."""
    pnl = [t.net_pnl for t in trades]
    wins = [p for p in pnl if p > 0]
    losses = [p for p in pnl if p < 0]
    gross_win = sum(wins)
    gross_loss = -sum(losses)
    mean_win = _mean(wins)
    mean_loss = _mean(losses)
    std = _sample_std(pnl)
    mean = _mean(pnl)
    streak = longest = 0
    for p in pnl:
        streak = streak + 1 if p < 0 else 0
        longest = max(longest, streak)
    return {
        "trades": len(trades),
        "win_rate": len(wins) / len(trades) if trades else None,
        "total_pnl": sum(pnl),
        "fees": sum(t.fees for t in trades),
        "funding": sum(t.funding for t in trades),
        "profit_factor": gross_win / gross_loss if gross_loss > 0 else None,
        "expectancy": mean,
        "avg_trade_duration_s": _mean([t.duration_s for t in trades]),
        "risk_reward": (
            mean_win / abs(mean_loss) if mean_win is not None and mean_loss is not None else None
        ),
        "sqn": (
            math.sqrt(len(pnl)) * mean / std
            if mean is not None and std is not None and std > 0
            else None
        ),
        "max_consecutive_losses": longest,
    }


def sharpe_ratio(returns: Moments, periods_per_year: float) -> float | None:
    std = returns.sample_std
    if std is None or std <= 0:
        return None
    return returns.mean / std * math.sqrt(periods_per_year)


def sortino_ratio(returns: Moments, periods_per_year: float) -> float | None:
    down = returns.downside_deviation
    if down is None or down <= 0:
        return None
    return returns.mean / down * math.sqrt(periods_per_year)


def probabilistic_sharpe(returns: Moments, benchmark: float = 0.0) -> float | None:
    """P(true per-period Sharpe > benchmark), Bailey & Lopez de Prado (2012)."""
    std = returns.sample_std
    skew = returns.skew
    kurt = returns.kurtosis
    if std is None or std <= 0 or skew is None or kurt is None:
        return None
    sr = returns.mean / std
    var = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr
    if var <= 0:
        return None
    return normal_cdf((sr - benchmark) * math.sqrt(returns.n - 1) / math.sqrt(var))


def cagr(initial: float, final: float, duration_ms: int) -> float | None:
    if duration_ms <= 0 or initial <= 0:
        return None
    if final <= 0:
        return -1.0
    try:
        value = math.exp(math.log(final / initial) * YEAR_MS / duration_ms) - 1.0
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def equity_metrics(
    equity: EquityStats,
    initial_balance: float,
    duration_ms: int,
    sharpe_period_ms: int,
) -> dict[str, Any]:
    """Account-level metrics from the equity aggregates."""
    final = equity.last_equity if equity.last_equity is not None else initial_balance
    periods = YEAR_MS / sharpe_period_ms
    growth = cagr(initial_balance, final, duration_ms)
    max_dd = equity.max_drawdown
    return {
        "return_pct": (final - initial_balance) / initial_balance * 100.0
        if initial_balance > 0
        else None,
        "sharpe": sharpe_ratio(equity.returns, periods),
        "sortino": sortino_ratio(equity.returns, periods),
        "max_drawdown": max_dd,
        "cagr": growth,
        "calmar": growth / max_dd if growth is not None and max_dd > 0 else None,
        "psr": probabilistic_sharpe(equity.returns),
    }


def all_metrics(
    trades: Sequence[Trade],
    equity: EquityStats,
    *,
    initial_balance: float,
    duration_ms: int,
    sharpe_period_ms: int,
    liquidations: int,
    denials: Mapping[str, int],
) -> dict[str, Any]:
    """Every metric of METRIC_NAMES, keyed by its public name."""
    values = trade_metrics(trades)
    values.update(equity_metrics(equity, initial_balance, duration_ms, sharpe_period_ms))
    values["liquidations"] = liquidations
    values["denials"] = dict(sorted(denials.items()))
    return {name: values[name] for name in METRIC_NAMES}
