"""SPEC 13: the deflated Sharpe ratio is for the number of trials tried. A pruned trial
was tried (its parameters were searched, and dropped for doing worse): counting only the
completed ones deflated less than the search did, and a `promotion.min_dsr` passed on
fewer trials than were tried."""

from pathlib import Path

import optuna
import pytest
from optuna.distributions import IntDistribution
from optuna.trial import TrialState, create_trial

from perps_bot.config import Settings
from perps_bot.feeds.dataset import Dataset
from perps_bot.metrics import build_report
from perps_bot.metrics.dsr import deflated_sharpe, sample_variance
from perps_bot.metrics.walkforward import walkforward_section
from perps_bot.research.objectives import Objectives
from perps_bot.research.study import StudySpec
from perps_bot.research.summary import summary
from perps_bot.research.trial import SharpeMoments, TrialJob, TrialOutcome, TrialSpec
from perps_bot.research.walkforward import WindowPlan, optimise_window
from perps_bot.storage import RunStore
from perps_bot.storage.walkforward import save_windows
from tests.metrics.metrics_builders import DAY, T0, RunBuilder
from tests.research.helpers import write_candles

DIST = IntDistribution(0, 100)


def _trial(x: int, state: TrialState, sharpe: float) -> optuna.trial.FrozenTrial:
    done = state == TrialState.COMPLETE
    return create_trial(
        params={"x": x},
        distributions={"x": DIST},
        value=sharpe if done else None,
        state=state,
        user_attrs={"moments": [40, sharpe, 0.0, 3.0]} if done else {},
    )


def test_optimize_deflates_for_the_pruned_trials_too() -> None:
    study = optuna.create_study(direction="maximize")
    for x, sharpe in enumerate([0.1, 0.3, 0.2]):
        study.add_trial(_trial(x, TrialState.COMPLETE, sharpe))
    for x in (10, 11, 12, 13):
        study.add_trial(_trial(x, TrialState.PRUNED, 0.0))
    out = summary(study, 3)
    assert out["trials"] == 7
    variance = sample_variance([0.1, 0.3, 0.2])
    assert out["dsr"] == pytest.approx(deflated_sharpe(0.3, 40, 0.0, 3.0, 7, variance))


class HalfPruned:
    """Trials 0, 2, 4 complete (a Sharpe ratio of number / 10), 1, 3, 5 are pruned."""

    workers = 1

    def __init__(self) -> None:
        self._queue: list[TrialSpec] = []

    def submit(self, spec: TrialSpec) -> None:
        self._queue.append(spec)

    def next_done(self) -> TrialOutcome:
        spec = self._queue.pop(0)
        if spec.number % 2:
            return TrialOutcome(spec.number, spec.params, steps=[(10, -1.0)], pruned=True)
        sharpe = spec.number / 10
        return TrialOutcome(spec.number, spec.params, {"total_pnl": sharpe},
                            SharpeMoments(40, sharpe, 0.0, 3.0))  # fmt: skip

    @property
    def pending(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        self._queue.clear()


def test_a_walkforward_deflates_for_every_trial_its_windows_tried(tmp_path: Path) -> None:
    data = Dataset.load(["BTC-PERP"], [write_candles(tmp_path / "c.feather", 120)],
                        funding_interval_ms=8 * 3_600_000, default_funding_rate=0.0)  # fmt: skip
    start = data.start_ts
    plan = WindowPlan(0, start, start + 60 * 60_000, start + 60 * 60_000, start + 120 * 60_000)
    spec = StudySpec("w0", tmp_path / "s.sqlite", Objectives.parse("total_pnl"), {"x": DIST},
                     trials=6, prune=False)  # fmt: skip
    record = optimise_window(plan, TrialJob(Settings()), data, spec, lambda j, d: HalfPruned())
    assert sorted(record.sharpes) == [0.0, 0.2, 0.4]

    store = RunStore(tmp_path / "wf.sqlite")
    b = RunBuilder(store, "wf-1", kind="walkforward", end_ts=T0 + 2 * DAY)
    b.curve([(T0 + k * DAY // 4, 10_000.0 + 10 * k + (k % 3)) for k in range(9)])
    run_id = b.done()
    window = [record.__class__(0, T0 - DAY, T0, T0, T0 + 2 * DAY, record.params,
                               record.in_sample, record.sharpes)]  # fmt: skip
    save_windows(store.connection, run_id, window)
    store.connection.commit()
    section = walkforward_section(store, build_report(store, run_id))
    assert section is not None
    assert section["trials"] == 6
    assert section["windows"][0]["trials"] == 6
