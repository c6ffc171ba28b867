"""A study's trials do not depend on which worker finishes first: with the same seed,
workers and data, the same trial numbers get the same parameters, prune thresholds
and values, whatever order the trials complete in (worker speed on a busy machine,
Ray scheduling), so a walk-forward run's chosen parameters are reproducible."""

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState

from perps_bot.research.objectives import Objectives
from perps_bot.research.study import StudySpec, run_study
from perps_bot.research.trial import PruneRule, TrialOutcome, TrialSpec

SPACE = {"x": FloatDistribution(0.0, 1.0), "n": IntDistribution(0, 50)}


class Shuffled:
    """A backend of `workers` workers whose trials finish in an order drawn from `picks`
    (an index into the trials still running); the outcome depends on the params only."""

    def __init__(self, workers: int, picks: list[int]) -> None:
        self.workers = workers
        self._running: list[TrialSpec] = []
        self._picks = iter(picks)
        self.rules: dict[int, PruneRule | None] = {}

    def submit(self, spec: TrialSpec) -> None:
        self.rules[spec.number] = spec.prune
        self._running.append(spec)

    def next_done(self) -> TrialOutcome:
        spec = self._running.pop(next(self._picks, 0) % len(self._running))
        x, n = float(spec.params["x"]), int(spec.params["n"])
        value = -((x - 0.3) ** 2) - ((n - 20) / 50) ** 2
        steps = [(100, value * 10), (200, value * 5)]
        return TrialOutcome(spec.number, spec.params, {"total_pnl": value}, None, steps)

    @property
    def pending(self) -> int:
        return len(self._running)

    def close(self) -> None:
        self._running.clear()


def study(tmp: Path, name: str, picks: list[int]) -> tuple[list[object], dict[int, object]]:
    spec = StudySpec(name, tmp / f"{name}.sqlite", Objectives.parse("total_pnl"), SPACE,
                     trials=14, seed=5)  # fmt: skip
    backend = Shuffled(3, picks)
    done = run_study(spec, backend).study
    return [(t.number, t.params, t.values) for t in done.trials], backend.rules


@settings(max_examples=3, deadline=None)
@given(picks=st.lists(st.integers(0, 2), min_size=14, max_size=14))
def test_completion_order_does_not_change_the_study(
    tmp_path_factory: pytest.TempPathFactory, picks: list[int]
) -> None:
    tmp = tmp_path_factory.mktemp("order")
    in_order = study(tmp, "fifo", [0] * 14)
    shuffled = study(tmp, "shuffled", picks)
    assert shuffled == in_order


def test_the_number_of_workers_does_not_change_the_study(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The same seed gives the same trials, prune thresholds and values with -j 1, 2 or
    3 (and the default -j, the machine's cores): on main trial k was sampled after
    trial k - workers was told, so -j 1 pruned trial 5 (5 trials told) where -j 2 did
    not (4 told) and the studies, the chosen parameters with them, parted there."""
    tmp = tmp_path_factory.mktemp("workers")
    studies = []
    for workers in (1, 2, 3):
        spec = StudySpec(f"w{workers}", tmp / f"w{workers}.sqlite", Objectives.parse("total_pnl"),
                         SPACE, trials=20, seed=5)  # fmt: skip
        backend = Shuffled(workers, [])
        done = run_study(spec, backend).study
        studies.append(([(t.number, t.params, t.values, t.state) for t in done.trials],
                        backend.rules))  # fmt: skip
    assert any(rule is not None for rule in studies[0][1].values()), "nothing was pruned"
    assert studies[1] == studies[0]
    assert studies[2] == studies[0]


class Interrupted(Shuffled):
    """Ctrl-C while the third trial runs."""

    def next_done(self) -> TrialOutcome:
        if len(self.rules) - len(self._running) == 2:
            raise KeyboardInterrupt
        return super().next_done()


def test_an_interrupted_study_keeps_no_trial_running(tmp_path: Path) -> None:
    """Ctrl-C leaves the trials asked and not told as failed (interrupted), never
    RUNNING for ever: the continued study's counts said `running N` in every later
    summary, trials that no process would ever finish."""
    spec = StudySpec("ctrl-c", tmp_path / "s.sqlite", Objectives.parse("total_pnl"), SPACE,
                     trials=20, seed=5)  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        run_study(spec, Interrupted(1, []))
    spec = dataclasses.replace(spec, trials=2)
    study = run_study(spec, Shuffled(1, [])).study
    states = [t.state for t in study.trials]
    assert TrialState.RUNNING not in states
    assert states.count(TrialState.COMPLETE) == 4
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert failed and all(t.user_attrs["error"] == "interrupted" for t in failed)
