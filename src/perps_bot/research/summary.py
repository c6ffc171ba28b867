"""What `perps-bot optimize` shows and stores about a study: the top trials with their
parameters and metrics, Optuna's parameter importance, the trial counts, and the
deflated Sharpe ratio of the best trial for the number of trials tried."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.table import Table

from perps_bot.metrics.dsr import deflated_sharpe, sample_variance
from perps_bot.metrics.formatting import display_metric
from perps_bot.research.study import best_trials, counts, importance, ranked, trial_metrics

SHOWN_METRICS = ("sharpe", "total_pnl", "max_drawdown", "trades", "win_rate")


def study_dsr(study: optuna.Study, best: FrozenTrial) -> dict[str, Any]:
    """DSR of `best` given every completed trial's per-period Sharpe ratio."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    sharpes = [float(t.user_attrs["moments"][1]) for t in done if "moments" in t.user_attrs]
    moments = best.user_attrs.get("moments")
    value = None
    if moments is not None and sharpes:
        n, sharpe, skew, kurt = moments
        value = deflated_sharpe(sharpe, int(n), skew, kurt, len(sharpes), sample_variance(sharpes))
    return {"dsr": value, "trials": len(sharpes), "sharpe_variance": sample_variance(sharpes)}


def summary(study: optuna.Study, top: int) -> dict[str, Any]:
    best = best_trials(study)
    out: dict[str, Any] = {
        "study": study.study_name,
        "objectives": study.user_attrs.get("objective"),
        "counts": counts(study),
        "importance": importance(study),
        "top": [_row(t) for t in ranked(study, top)],
        "best": [_row(t) for t in best],
    }
    if best:
        out.update(study_dsr(study, best[0]))
    return out


def _row(trial: FrozenTrial) -> dict[str, Any]:
    metrics = trial_metrics(trial)
    return {
        "number": trial.number,
        "values": list(trial.values or []),
        "params": dict(trial.params),
        "metrics": {name: metrics.get(name) for name in SHOWN_METRICS},
    }


def render(data: dict[str, Any], console: Console) -> None:
    table = Table(title=f"study {data['study']}: top trials by {data['objectives']}")
    table.add_column("#", justify="right")
    table.add_column("params", no_wrap=True)
    for name in SHOWN_METRICS:
        table.add_column(name, justify="right")
    for row in data["top"]:
        params = " ".join(f"{k}={_short(v)}" for k, v in row["params"].items())
        shown = [display_metric(n, row["metrics"][n]) for n in SHOWN_METRICS]
        table.add_row(str(row["number"]), params, *shown)
    console.print(table)
    if data["importance"]:
        parts = [f"{name} {value:.2f}" for name, value in data["importance"].items()]
        console.print("parameter importance (PED-ANOVA): " + ", ".join(parts), highlight=False)
    states = ", ".join(f"{n} {s}" for s, n in sorted(data["counts"].items()))
    console.print(f"trials in the study: {states}", highlight=False)
    if "dsr" in data:
        dsr = "n/a" if data["dsr"] is None else f"{data['dsr']:.4f}"
        console.print(
            f"deflated Sharpe ratio of the best trial: {dsr} ({data['trials']} trials,"
            f" variance of their daily Sharpe ratios {data['sharpe_variance']:.4g})",
            highlight=False,
        )


def _short(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
