"""What `perps-bot optimize` shows and stores about a study: the top trials with their
parameters and metrics, Optuna's parameter importance, the trial counts, and the
deflated Sharpe ratio of the best trial for the number of trials tried. A metric from
too little data (a Sharpe ratio from fewer than 30 returns, a win rate from fewer than
30 trades; SPEC 15) is marked (!) with the reason, as the report marks it."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.table import Table

from perps_bot.metrics.dsr import deflated_sharpe, sample_variance
from perps_bot.metrics.formatting import display_metric
from perps_bot.metrics.warnings import MIN_DAYS, data_warnings, dsr_warning
from perps_bot.research.study import (
    best_trials,
    counts,
    importance,
    ranked,
    trial_metrics,
    tried,
)

SHOWN_METRICS = ("sharpe", "total_pnl", "max_drawdown", "trades", "win_rate")


def study_dsr(study: optuna.Study, best: FrozenTrial, sharpe_period: str) -> dict[str, Any]:
    """DSR of `best` for every trial tried (pruned ones too, `tried`) and the variance
    of the completed trials' per-period Sharpe ratios, and why it is flagged
    (`dsr_warning`: the best trial's Sharpe from fewer than 30 returns)."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    sharpes = [float(t.user_attrs["moments"][1]) for t in done if "moments" in t.user_attrs]
    trials = max(tried(study), len(sharpes))
    moments = best.user_attrs.get("moments")
    value = warning = None
    if moments is not None and sharpes:
        n, sharpe, skew, kurt = moments
        value = deflated_sharpe(sharpe, int(n), skew, kurt, trials, sample_variance(sharpes))
        warning = dsr_warning(int(n), sharpe_period)
    return {"dsr": value, "trials": trials, "sharpe_variance": sample_variance(sharpes),
            "dsr_warning": warning}  # fmt: skip


def summary(
    study: optuna.Study, top: int, *, sharpe_period: str = "1d", days: float = MIN_DAYS
) -> dict[str, Any]:
    """`sharpe_period` and `days`: the runs' Sharpe period and length (their warnings)."""
    best = best_trials(study)
    out: dict[str, Any] = {
        "study": study.study_name,
        "objectives": study.user_attrs.get("objective"),
        "counts": counts(study),
        "importance": importance(study),
        "top": [_row(t, sharpe_period, days) for t in ranked(study, top)],
        "best": [_row(t, sharpe_period, days) for t in best],
    }
    if best:
        out.update(study_dsr(study, best[0], sharpe_period))
    return out


def _row(trial: FrozenTrial, sharpe_period: str, days: float) -> dict[str, Any]:
    metrics = trial_metrics(trial)
    shown = {name: metrics.get(name) for name in SHOWN_METRICS}
    moments = trial.user_attrs.get("moments")
    returns = int(moments[0]) if moments else 0
    warned = data_warnings(shown, returns=returns, days=days, sharpe_period=sharpe_period)
    return {
        "number": trial.number,
        "values": list(trial.values or []),
        "params": dict(trial.params),
        "metrics": shown,
        "returns": returns,
        "warnings": [x.as_dict() for x in warned],
    }


def render(data: dict[str, Any], console: Console) -> None:
    table = Table(title=f"study {data['study']}: top trials by {data['objectives']}")
    table.add_column("#", justify="right")
    table.add_column("params", no_wrap=True)
    for name in SHOWN_METRICS:
        table.add_column(name, justify="right")
    for row in data["top"]:
        params = " ".join(f"{k}={_short(v)}" for k, v in row["params"].items())
        warned = {x["metric"] for x in row.get("warnings", ())}
        shown = [display_metric(n, row["metrics"][n]) + (" (!)" if n in warned else "")
                 for n in SHOWN_METRICS]  # fmt: skip
        table.add_row(str(row["number"]), params, *shown)
    console.print(table)
    for line in _warning_lines(data["top"]):
        console.print(line, highlight=False)
    if data["importance"]:
        parts = [f"{name} {value:.2f}" for name, value in data["importance"].items()]
        console.print("parameter importance (PED-ANOVA): " + ", ".join(parts), highlight=False)
    states = ", ".join(f"{n} {s}" for s, n in sorted(data["counts"].items()))
    console.print(f"trials in the study: {states}", highlight=False)
    if "dsr" in data:
        dsr = "n/a" if data["dsr"] is None else f"{data['dsr']:.4f}"
        warning = data.get("dsr_warning")
        console.print(
            f"deflated Sharpe ratio of the best trial: {dsr}"
            f"{f' (!) {warning}' if warning else ''} ({data['trials']} trials,"
            f" variance of their daily Sharpe ratios {data['sharpe_variance']:.4g})",
            highlight=False,
        )


def _warning_lines(rows: list[dict[str, Any]]) -> list[str]:
    """'(!) sharpe from 2 returns of 1d (fewer than 30): trials 3, 0' for each flagged
    metric and reason of the table's trials."""
    trials: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        for x in row.get("warnings", ()):
            trials.setdefault((x["metric"], x["reason"]), []).append(str(row["number"]))
    return [f"(!) {metric} {reason}: trial{'s' if len(numbers) > 1 else ''}"
            f" {', '.join(numbers)}" for (metric, reason), numbers in trials.items()]  # fmt: skip


def _short(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
