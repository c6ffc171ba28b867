"""The optimisation loop: an Optuna study in SQLite, asked and told by this process,
with the trials run by a backend (research.backends).

Why ask-and-tell instead of `study.optimize`: the trials run in other processes or on
a Ray cluster that cannot reach the study's SQLite file; this process alone talks to
the storage. It keeps `ASK_AHEAD` trials in flight (or `workers`, when there are
more), tells their outcomes in trial order (so the study does not depend on which
worker was faster, nor, up to `ASK_AHEAD` workers, on how many there are), records each
trial's metrics as user attributes and its return at each batch as intermediate
values, and marks trials pruned or failed. Running the command again
with the same study name and storage adds trials to the same study (`load_if_exists`).

Pruning (single objective): Optuna's median rule. Once `startup` trials completed, a
new trial is given, for every checkpoint past the first `warmup` share of the data,
the median return that completed trials had there; a trial below it at one of them
stops (pruned). The thresholds are those of the trials told when the trial is asked,
so a trial's fate does not depend on how fast other workers are.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import sqlite3
import statistics
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.distributions import BaseDistribution, check_distribution_compatibility
from optuna.trial import FrozenTrial, Trial, TrialState

from perps_bot.config import ConfigError, Settings
from perps_bot.domain import iso_utc, short, short_path
from perps_bot.feeds.dataset import Dataset
from perps_bot.research.backends import Backend
from perps_bot.research.objectives import Objectives
from perps_bot.research.space import plain
from perps_bot.research.trial import PruneRule, TrialOutcome, TrialSpec

PRUNE_STARTUP = 5  # completed trials before anything is pruned
SAMPLER_SEEDS = 2**32  # Optuna's samplers take seeds 0 to 2**32 - 1; a run seed goes to 2**63 - 1
PRUNE_WARMUP = 0.3  # no pruning in the first 30% of the data
#: trials asked before the first is told, whatever -j: trial k is sampled (and given its
#: prune thresholds) once trials 0 to k - ASK_AHEAD are told, so -j 1 to -j 8 (and the
#: default -j, this machine's cores) give the same study; more workers ask that many
ASK_AHEAD = 8


@dataclass(frozen=True, slots=True)
class StudySpec:
    name: str
    storage: Path
    objectives: Objectives
    space: Mapping[str, BaseDistribution]
    trials: int
    seed: int = 0
    prune: bool = True
    #: what the study was made for (checked when it is continued), `candles` included
    about: Mapping[str, str] = field(default_factory=dict)


def candles_about(start_ms: int, end_ms: int) -> str:
    """The `candles` a study's trials run on, for its `about`: a study continued on other
    candles would rank trials of other data together (and a walk-forward window's study
    continued on a longer training range would choose on trials that saw its test data)."""
    return f"{iso_utc(start_ms)} to {iso_utc(end_ms)}"


def data_about(dataset: Dataset) -> str:
    """The `data` a study's trials run on, for its `about`: which series the runs read
    and a fingerprint of their values (candles, funding and mark of every symbol). The
    candles' time range alone let a study go on with other funding or mark files, or
    other candles of the same range, and rank trials of different data together."""
    digest = hashlib.blake2b(digest_size=8)
    kinds: set[str] = {"candles"}
    for s in dataset.symbols:
        c = s.candles
        arrays = [c.open_time, c.open, c.high, c.low, c.close, c.volume]
        digest.update(f"{s.symbol}|{c.interval_ms}|".encode())
        if s.funding is not None:
            kinds.add("funding")
            arrays += [s.funding.ts, s.funding.rate]
            digest.update(f"funding {s.funding.interval_ms}|".encode())
        if s.mark is not None:
            kinds.add("mark")
            m = s.mark
            arrays += [m.open_time, m.open, m.high, m.low, m.close]
            digest.update(b"mark|")
        for array in arrays:
            digest.update(array.tobytes())
    named = ", ".join(k for k in ("candles", "funding", "mark") if k in kinds)
    return f"{named} (fingerprint {digest.hexdigest()})"


def setup_about(settings: Settings, searched: Iterable[str]) -> dict[str, str]:
    """What else makes a trial's run, for a study's `about`: the strategy's fixed params
    and the run's profile, bar size, order sizes and balance. A study continued with
    others would rank trials of other runs together, and store the best trial's searched
    params run with the new fixed ones as its best run (not the run it measured)."""
    strategy, names = settings.strategy, set(searched)
    fixed = sorted((k, v) for k, v in strategy.params.items() if k not in names)
    sizes = ", ".join(f"{s} {strategy.size_for(s):g}" for s in settings.run.symbols)
    return {
        "fixed params": " ".join(f"{k}={v}" for k, v in fixed) or "none",
        "run": f"profile {settings.profile}, timeframe {strategy.timeframe}, order size"
        f" {sizes}, balance {settings.account.initial_balance:g}",
    }


@dataclass(slots=True)
class StudyRun:
    """What one invocation did (the study itself holds every trial ever run)."""

    study: optuna.Study
    seconds: float = 0.0
    outcomes: list[TrialOutcome] = field(default_factory=list)

    @property
    def trials_per_minute(self) -> float:
        return 60.0 * len(self.outcomes) / self.seconds if self.seconds > 0 else 0.0


def open_study(spec: StudySpec) -> optuna.Study:
    """Create the study, or load it to continue; one line when it does not fit."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _check_storage(spec.storage)
    # quoted: SQLAlchemy reads a '?' in the path as URL options and decodes '%41'
    url = f"sqlite:///{urllib.parse.quote(str(spec.storage))}"
    try:
        study = optuna.create_study(
            study_name=spec.name,
            storage=url,
            directions=spec.objectives.directions,
            sampler=optuna.samplers.TPESampler(seed=spec.seed % SAMPLER_SEEDS),
            load_if_exists=True,
        )
    except ValueError as exc:  # e.g. another number of objectives than before
        raise ConfigError(f"study {spec.name!r} in {spec.storage}: {exc}") from None
    except sqlalchemy.exc.OperationalError as exc:  # a file it may not create or write
        raise ConfigError(
            f"bad --storage {short_path(spec.storage)}: cannot open it ({exc.orig})"
        ) from None
    # a continued study's sampler is seeded past the trials it has: the same seed would
    # draw the first invocation's parameter sets again (duplicates, counted by the DSR)
    done = len(study.get_trials(deepcopy=False))
    if done:
        study.sampler = optuna.samplers.TPESampler(seed=(spec.seed + done) % SAMPLER_SEEDS)
    known = study.user_attrs
    for key, value in spec.about.items():
        if key in known and known[key] != value:
            raise ConfigError(
                f"study {spec.name!r} was made for {key} {known[key]!r}, not {value!r}:"
                " use another --study name"
            )
        study.set_user_attr(key, value)
    _check_space(study, spec)
    return study


def _check_storage(path: Path) -> None:
    """The study file is a new file or Optuna's SQLite database. A folder, a file that
    is no database or another program's database is refused before Optuna opens it
    (it would fail inside SQLAlchemy, or write its tables into the other program's file)."""
    where = f"--storage {short_path(path)}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"bad {where}: cannot create its folder ({exc.strerror or exc})"
        ) from None
    if path.is_dir():
        raise ConfigError(f"bad {where}: a folder, not a study file")
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        con = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            rows = con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise ConfigError(f"bad {where}: not a study database ({exc})") from None
    tables = {str(row[0]) for row in rows}
    if tables and "studies" not in tables:
        raise ConfigError(f"bad {where}: another program's database, not a study file")


def _check_space(study: optuna.Study, spec: StudySpec) -> None:
    """A continued study keeps each parameter's kind of range (int, float, log, choice):
    Optuna refuses another one only when it is asked for a trial, with a trial left
    RUNNING in the study."""
    known: dict[str, BaseDistribution] = {}
    for trial in study.get_trials(deepcopy=False):
        for name, distribution in trial.distributions.items():
            known.setdefault(name, distribution)
    for name, distribution in spec.space.items():
        if name not in known:
            continue
        try:
            check_distribution_compatibility(known[name], distribution)
        except ValueError as exc:
            reason = f"{short(name)} with another kind of range ({str(exc).rstrip('.')})"
            raise ConfigError(
                f"study {short(spec.name)!r} searched {reason}: use another --study name"
            ) from None


def run_study(
    spec: StudySpec,
    backend: Backend,
    *,
    on_trial: Callable[[TrialOutcome], None] | None = None,
) -> StudyRun:
    """Run `spec.trials` more trials on `backend`, `backend.workers` at a time.

    Outcomes are told in trial-number order (one that finishes early waits for the
    trials before it), and trial k + ahead is asked right after trial k is told (ahead:
    ASK_AHEAD, or the workers when there are more): each trial is sampled (and given
    its prune thresholds) from the same earlier trials whichever worker finished first
    and however many workers there are (up to ASK_AHEAD), so the same seed gives the
    same study on a busy machine, with -j 1 or -j 2, local processes or Ray."""
    study = open_study(spec)
    run = StudyRun(study)
    started = time.perf_counter()
    asked: dict[int, Trial] = {}  # asked, not told yet, in trial-number order
    finished: dict[int, TrialOutcome] = {}

    def ask() -> None:
        trial = study.ask(dict(spec.space))
        rule = _prune_rule(study, spec) if spec.prune else None
        backend.submit(TrialSpec(trial.number, plain(trial.params), rule))
        asked[trial.number] = trial

    submitted = min(spec.trials, max(backend.workers, ASK_AHEAD))
    try:
        for _ in range(submitted):
            ask()
        while asked:
            outcome = backend.next_done()
            finished[outcome.number] = outcome
            while asked and next(iter(asked)) in finished:
                number = next(iter(asked))
                outcome = finished.pop(number)
                outcome = tell(study, asked.pop(number), outcome, spec.objectives)
                run.outcomes.append(outcome)
                if on_trial is not None:
                    on_trial(outcome)
                if submitted < spec.trials:
                    ask()
                    submitted += 1
    except BaseException:  # Ctrl-C, a worker that died: no trial is left RUNNING for ever
        with contextlib.suppress(Exception):  # the storage's own error stays the one raised
            for trial in asked.values():
                trial.set_user_attr("error", "interrupted")
                study.tell(trial, state=TrialState.FAIL)
        raise
    run.seconds = time.perf_counter() - started
    return run


def tell(
    study: optuna.Study, trial: Trial, outcome: TrialOutcome, objectives: Objectives
) -> TrialOutcome:
    """Record a trial's outcome: metrics, intermediate returns, and its state. Returns
    the outcome as recorded: one whose objective is undefined failed, with that reason."""
    trial.set_user_attr("seconds", outcome.seconds)
    if outcome.moments is not None and not outcome.pruned:
        trial.set_user_attr("moments", list(_moments(outcome)))
    if outcome.metrics is not None and not outcome.pruned:  # a pruned run's are partial
        trial.set_user_attr("metrics", outcome.metrics)
    if not objectives.multi:
        for step, value in outcome.steps:
            trial.report(value, step)
    if outcome.error is not None:
        trial.set_user_attr("error", outcome.error)
        study.tell(trial, state=TrialState.FAIL)
        return outcome
    if outcome.pruned:
        study.tell(trial, state=TrialState.PRUNED)
        return outcome
    values, why = objectives.values(outcome.metrics or {})
    if values is None:
        trial.set_user_attr("error", why)
        study.tell(trial, state=TrialState.FAIL)
        return dataclasses.replace(outcome, error=why)
    study.tell(trial, values if objectives.multi else values[0])
    return outcome


def _moments(outcome: TrialOutcome) -> tuple[int, float, float, float]:
    m = outcome.moments
    assert m is not None
    return m.n, m.sharpe, m.skew, m.kurtosis


def _prune_rule(study: optuna.Study, spec: StudySpec) -> PruneRule | None:
    """The median return of completed trials at each checkpoint past the warm-up."""
    if spec.objectives.multi:
        return None  # Optuna prunes single-objective studies only
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(done) < PRUNE_STARTUP:
        return None
    by_step: dict[int, list[float]] = {}
    for trial in done:
        for step, value in trial.intermediate_values.items():
            by_step.setdefault(step, []).append(value)
    if not by_step:
        return None
    last = max(by_step)
    return PruneRule(
        {
            step: statistics.median(values)
            for step, values in by_step.items()
            if step >= PRUNE_WARMUP * last and len(values) >= PRUNE_STARTUP
        }
    )


def best_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The best trial (single objective) or the Pareto front (multi), best first."""
    if len(study.directions) == 1:
        try:
            return [study.best_trial]
        except ValueError:
            return []
    front = list(study.best_trials)
    sign = 1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else -1.0
    return sorted(front, key=lambda t: -sign * float(t.values[0]))


def ranked(study: optuna.Study, top: int) -> list[FrozenTrial]:
    """Completed trials, best first by the (first) objective."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    sign = 1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else -1.0
    return sorted(done, key=lambda t: (-sign * float(t.values[0]), t.number))[:top]


def importance(study: optuna.Study) -> dict[str, float]:
    """Optuna's parameter importance (PED-ANOVA, its default evaluator, which needs no
    scikit-learn) for the first objective; {} when it cannot tell (too few completed
    trials, one parameter value only). PED-ANOVA scores what makes a target LOW, so a
    maximised objective is negated."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(done) < 2:
        return {}
    sign = -1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its reminder that it scores LOW targets
            found = optuna.importance.get_param_importances(
                study,
                evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
                target=lambda t: sign * float(t.values[0]),
            )
    except (ValueError, RuntimeError):
        return {}
    return {name: float(value) for name, value in found.items()}


def tried(study: optuna.Study) -> int:
    """The trials the study tried, for the deflated Sharpe ratio (SPEC 13): completed
    and pruned ones (a pruned parameter set was searched too, and dropped for doing
    worse); not the failed ones, which never ran or measured nothing."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def counts(study: optuna.Study) -> dict[str, int]:
    states: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        key = trial.state.name.lower()
        states[key] = states.get(key, 0) + 1
    return states


def trial_metrics(trial: FrozenTrial) -> dict[str, Any]:
    metrics = trial.user_attrs.get("metrics")
    return metrics if isinstance(metrics, dict) else {}
