"""Enforced promotion (SPEC 6): dev/backtest -> canary -> prod, gated by the criteria.

Evidence must come from the stage below: a canary promotion needs a dev, backtest
or walkforward run (and, where `promotion.require_walkforward` / `promotion.min_dsr`
ask for it in the run's config or the canary profile's gate, a walk-forward run with
a high enough deflated Sharpe ratio), a prod promotion a live run of the canary
profile. Each threshold is the stricter of the run's own config and the target
stage's profile (`gate`: the canary profile to canary, the prod profile to prod), so a
run started with relaxed criteria cannot promote itself. A run still
`running` (no end yet) or `failed` is not evidence. A promotion is recorded for
the strategy fingerprint (strategy, parameters, bar size, a plan strategy's plan file
content, code version: strategies.loader), so changing any of those needs a new
promotion.

A promotion is written to the run's own database and to any extra stores given
(the CLI passes the target stage's profile database, which is the one
`perps-bot --profile prod` opens and asks `has_promotion`).
"""

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass

from perps_bot.config import PromotionConfig
from perps_bot.domain import PerpsBotError
from perps_bot.metrics.criteria import Criterion, stricter
from perps_bot.metrics.drift_gate import drift_criteria
from perps_bot.metrics.formatting import ReportError
from perps_bot.metrics.report import Report, build_report
from perps_bot.metrics.walkforward import CANARY_KINDS, with_evidence
from perps_bot.storage import PromotionRecord, RunRecord, RunStore

STAGES: tuple[str, ...] = ("canary", "prod")
_EVIDENCE_STATUSES = ("completed", "interrupted")


class PromotionRefused(PerpsBotError):
    """The run cannot promote its strategy; the message names every reason."""

    def __init__(self, message: str, report: Report | None = None) -> None:
        super().__init__(message)
        self.report = report  # set when the run was evaluated (criteria failed)

    @property
    def failed(self) -> list[Criterion]:
        return [] if self.report is None else self.report.failed


@dataclass(frozen=True, slots=True)
class PromotionOutcome:
    record: PromotionRecord
    report: Report
    recorded_in: int  # number of databases the promotion was written to


def has_promotion(store: RunStore, fingerprint: str, stage: str) -> bool:
    """True when `fingerprint` has a recorded promotion to `stage` in `store`."""
    return bool(store.promotions(fingerprint, stage))


def check_run_kind(run: RunRecord, stage: str) -> None:
    """Raise PromotionRefused unless `run` is valid evidence for promotion to `stage`."""
    if stage not in STAGES:
        raise PromotionRefused(f"unknown stage {stage!r}: use canary or prod")
    if stage == "canary" and run.kind not in CANARY_KINDS:
        raise PromotionRefused(
            f"promotion to canary needs a dev, backtest or walkforward run; run {run.run_id} is"
            f" a {run.kind} run"
        )
    if stage == "prod" and (run.kind != "live" or run.profile != "canary"):
        raise PromotionRefused(
            f"promotion to prod needs a live run of the canary profile; run {run.run_id} is a"
            f" {run.kind} run of profile {run.profile}"
        )
    if run.status not in _EVIDENCE_STATUSES:
        raise PromotionRefused(
            f"run {run.run_id} is {run.status}: only a completed or interrupted run counts"
        )


def criteria_json(criteria: Sequence[Criterion]) -> str:
    return json.dumps([c.as_dict() for c in criteria], sort_keys=True, separators=(",", ":"))


def evaluate_promotion(
    store: RunStore, stage: str, run_id: str = "latest", *, gate: PromotionConfig | None = None
) -> Report:
    """The run's report if it may promote to `stage`; else PromotionRefused naming every
    failed criterion (or the reason the run is not valid evidence). `gate` is the
    target stage's profile's `promotion:`: each threshold is the stricter of it and the
    run's own config, and to canary it may ask for out-of-sample evidence too."""
    run = store.run(run_id)
    children = store.children(run.run_id)
    if children:
        names = ", ".join(c.portfolio for c in children)
        raise ReportError(
            f"run {run.run_id} has several portfolios ({names}): a promotion is a strategy's,"
            " give --portfolio ID"
        )
    check_run_kind(run, stage)
    report = build_report(store, run.run_id)
    if stage == "canary":
        report, _ = with_evidence(store, report, gate)
    hint = None
    if stage == "prod":  # paper must predict live: the canary run's drift (SPEC 14)
        drift, hint = drift_criteria(store, run)
        report = dataclasses.replace(report, criteria=[*report.criteria, *drift])
    if gate is not None:
        held = stricter(report.criteria, report.promotion, gate, stage)
        report = dataclasses.replace(report, criteria=held)
    failed, total = report.failed, len(report.criteria)
    if failed:
        reasons = "; ".join(c.describe() for c in failed)
        raise PromotionRefused(
            f"promotion to {stage} refused: {len(failed)} of {total} criteria"
            f" failed: {reasons}" + (f" ({hint})" if hint else ""),
            report,
        )
    return report


def record_promotion(report: Report, stage: str, stores: Sequence[RunStore]) -> PromotionRecord:
    """Write the promotion of a passing report into every store; return the first's record."""
    if not report.passed:
        raise PromotionRefused(f"promotion to {stage} refused: criteria failed", report)
    run = report.run
    blob = criteria_json(report.criteria)
    unique: list[RunStore] = []
    for store in stores:
        if all(store is not seen for seen in unique):
            unique.append(store)
    for store in unique:
        store.add_promotion(run.strategy_fingerprint, run.strategy, stage, run.run_id, blob)
    return unique[0].promotions(run.strategy_fingerprint, stage)[-1]


def promote(
    store: RunStore,
    stage: str,
    run_id: str = "latest",
    *,
    also_record_in: Sequence[RunStore] = (),
    gate: PromotionConfig | None = None,
) -> PromotionOutcome:
    """Check the run and record its promotion in `store` (and `also_record_in`)."""
    report = evaluate_promotion(store, stage, run_id, gate=gate)
    stores = [store, *also_record_in]
    record = record_promotion(report, stage, stores)
    return PromotionOutcome(record=record, report=report, recorded_in=len({id(s) for s in stores}))
