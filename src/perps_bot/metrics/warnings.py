"""Warnings on metrics computed from too little data.

A Sharpe ratio from two daily returns, a win rate from three trades or a CAGR
annualised from two days are numbers, but not evidence: a two-day run printing
`sharpe -348` without a word misleads. Each rule names the metric, how much data
it came from and the minimum under which it is flagged. A metric that is null
(n/a) has nothing to warn about. The table, the JSON (`warnings`) and the HTML
show the same list.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MIN_RETURNS = 30
MIN_TRADES = 30
MIN_DAYS = 30.0

RETURN_METRICS = ("sharpe", "sortino", "psr")
TRADE_METRICS = ("win_rate", "profit_factor", "expectancy", "risk_reward", "sqn")
ANNUALISED_METRICS = ("cagr", "calmar")


@dataclass(frozen=True, slots=True)
class MetricWarning:
    metric: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"metric": self.metric, "reason": self.reason}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def data_warnings(
    metrics: Mapping[str, Any], *, returns: int, days: float, sharpe_period: str
) -> list[MetricWarning]:
    """The warnings for `metrics`, in the metrics' order."""
    trades = int(metrics.get("trades") or 0)
    reasons: dict[str, str] = {}
    if returns < MIN_RETURNS:
        why = f"from {_plural(returns, 'return')} of {sharpe_period} (fewer than {MIN_RETURNS})"
        reasons.update(dict.fromkeys(RETURN_METRICS, why))
    if trades < MIN_TRADES:
        why = f"from {_plural(trades, 'trade')} (fewer than {MIN_TRADES})"
        reasons.update(dict.fromkeys(TRADE_METRICS, why))
    if days < MIN_DAYS:
        why = f"annualised from {days:.2f} days (less than {MIN_DAYS:.0f})"
        reasons.update(dict.fromkeys(ANNUALISED_METRICS, why))
    return [
        MetricWarning(name, reasons[name])
        for name, value in metrics.items()
        if name in reasons and value is not None
    ]


def dsr_warning(returns: int, sharpe_period: str) -> str | None:
    """Why a deflated Sharpe ratio from `returns` returns of `sharpe_period` is flagged
    (the Sharpe ratio it deflates came from fewer than MIN_RETURNS), else None."""
    if returns >= MIN_RETURNS:
        return None
    return f"from {_plural(returns, 'return')} of {sharpe_period} (fewer than {MIN_RETURNS})"
