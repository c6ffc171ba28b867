"""One optimisation trial: a full backtest through the one orchestrator, kept cheap.

A trial is `run_bot` with a fresh feed over candles the worker already holds and the
settings of the study with the trial's parameters, in mode backtest with
`run.record: metrics` (an in-memory store, no log or journal files, no excursion or
price-series rows): the same stages, ledger and report code as `perps-bot backtest`,
so a trial's metrics are those of the stored run of the same parameters. What goes
back to the study is the metrics and the daily-return moments the deflated Sharpe
ratio needs, never the run.

Pruning: between batches the trial compares its return so far with the thresholds the
study gave it (the median return of earlier trials at the same point, see
`research.study`); below it, the run stops and the trial is reported pruned.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from perps_bot.config import Settings
from perps_bot.domain import PerpsBotError
from perps_bot.feeds.dataset import Dataset
from perps_bot.orchestrator.engine import Orchestrator
from perps_bot.orchestrator.run_process import run_coroutine
from perps_bot.orchestrator.runner import RunResult, run_bot

Scalar = bool | int | float | str


@dataclass(frozen=True, slots=True)
class PruneRule:
    """Stop a trial whose return (%) after `step` candles is below `thresholds[step]`."""

    thresholds: Mapping[int, float]


@dataclass(frozen=True, slots=True)
class TrialSpec:
    number: int
    params: dict[str, Scalar]
    prune: PruneRule | None = None


@dataclass(frozen=True, slots=True)
class SharpeMoments:
    """What the deflated Sharpe ratio needs of a run's periodic returns."""

    n: int
    sharpe: float  # per period, not annualised
    skew: float
    kurtosis: float


@dataclass(frozen=True, slots=True)
class TrialOutcome:
    number: int
    params: dict[str, Scalar]
    metrics: dict[str, Any] | None = None
    moments: SharpeMoments | None = None
    #: (candles done, return % so far) at each batch: the trial's intermediate values
    steps: list[tuple[int, float]] = field(default_factory=list)
    pruned: bool = False
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class TrialJob:
    """Everything a worker needs besides the candles: the study's settings (resolved by
    the driver, so a remote worker's environment cannot change them)."""

    settings: Settings

    def settings_for(self, params: Mapping[str, Scalar]) -> Settings:
        base = self.settings
        merged = {**base.strategy.params, **params}
        strategy = base.strategy.model_copy(update={"params": merged})
        return base.model_copy(update={"strategy": strategy})


def run_stored(
    job: TrialJob, data: Dataset, params: Mapping[str, Scalar], **run_options: Any
) -> RunResult:
    """The same backtest as a trial, stored like any run (the best trial's run, which
    `report` and `promote` then read); its metrics are the trial's."""
    settings = job.settings_for(params)
    full = settings.model_copy(update={"run": settings.run.model_copy(update={"record": "full"})})
    return run_coroutine(run_bot(full, feed=data.feed(), **run_options))


def run_trial(job: TrialJob, data: Dataset, spec: TrialSpec) -> TrialOutcome:
    """Run one trial to its metrics; a bad parameter set is an outcome, not an error."""
    started = time.perf_counter()
    steps: list[tuple[int, float]] = []
    pruned = False
    settings = job.settings_for(spec.params)
    initial = settings.account.initial_balance

    def watch(orchestrator: Orchestrator) -> None:
        nonlocal pruned
        done = orchestrator.feed.progress()[0]
        value = (orchestrator.ledger.equity() / initial - 1.0) * 100.0
        steps.append((done, value))
        limit = None if spec.prune is None else spec.prune.thresholds.get(done)
        if limit is not None and value < limit:
            pruned = True
            orchestrator.request_stop("pruned")

    try:
        trial = run_bot(settings, feed=data.feed(), progress=False, after_batch=watch)
        result = run_coroutine(trial)
    except PerpsBotError as exc:
        return TrialOutcome(spec.number, spec.params, error=str(exc), seconds=_since(started))
    report = result.report
    assert report is not None
    if result.status != "completed":
        error = f"run {result.status}: {report.run.detail}"
        return TrialOutcome(spec.number, spec.params, error=error, seconds=_since(started))
    return TrialOutcome(
        spec.number,
        spec.params,
        metrics=report.metrics_dict(),
        moments=moments_of(report.equity.returns),
        steps=steps,
        pruned=pruned,
        seconds=_since(started),
    )


def moments_of(returns: Any) -> SharpeMoments | None:
    """The per-period Sharpe ratio and shape of a run's returns (metrics.equity.Moments)."""
    std, skew, kurt = returns.sample_std, returns.skew, returns.kurtosis
    if std is None or std <= 0 or skew is None or kurt is None:
        return None
    return SharpeMoments(int(returns.n), float(returns.mean / std), float(skew), float(kurt))


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 6)


def finite(value: Any) -> float | None:
    """A metric as a finite float, or None (undefined: null in the report)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
