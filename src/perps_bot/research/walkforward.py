"""Walk-forward analysis (SPEC 13): optimise on each training window, trade the best
parameters on the test window after it, and stitch the test windows into one
out-of-sample run (kind `walkforward`) through the one orchestrator.

Windows, over the data's time span [start, end), start taken to the first edge of the
bars the strategy sees: rolling, window k trains on [start + k*step, start + k*step +
train) and tests on the `test` that follows; anchored, it trains on [start, start +
train + k*step). All three are whole bars, so every edge is a bar's edge. `step`
defaults to `test` and may not be shorter (overlapping test windows cannot make one
run). Each window's optimisation gets a dataset cut to its training range only
(Dataset.between), so no candle of a test window ever reaches the optimiser. The
out-of-sample run is the `walkforward` strategy over the data from the first test
start to the candle after the last test end (whose open closes the last window's
position, as the next window's first candle does for the others): in each test window
it plays the chosen parameters, between windows it is flat.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from perps_bot.config import ConfigError, Settings
from perps_bot.domain import RunMode, format_duration, iso_utc, short
from perps_bot.feeds.bars import BarGrid
from perps_bot.feeds.dataset import Dataset
from perps_bot.metrics.formatting import denials_text
from perps_bot.orchestrator.run_process import run_coroutine
from perps_bot.orchestrator.runner import RunResult, run_bot
from perps_bot.research.backends import Backend
from perps_bot.research.study import StudySpec, best_trials, run_study, trial_metrics, tried
from perps_bot.research.trial import TrialJob, TrialOutcome
from perps_bot.storage import RunStore
from perps_bot.storage.walkforward import WindowRecord, save_windows

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True, slots=True)
class WindowPlan:
    index: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int


def plan_windows(
    start: int,
    end: int,
    *,
    train: int,
    test: int,
    step: int | None = None,
    anchored: bool = False,
    bar: int = 1,
    bar_edge: int = 0,
    after: int = 0,
) -> list[WindowPlan]:
    """Every window whose test range, and the `after` that follows it, end within the
    data; ConfigError if none fits. Window edges fall on the edges of the `bar` the
    strategy sees (bars start at `bar_edge` + k * bar): the windows start at the first
    bar edge at or after `start`, and --train, --test and --step must be whole numbers
    of bars (a window ending inside a bar would hold its last position until that bar
    closed, in the next window's time); ConfigError otherwise, or if a window is shorter
    than a bar (no bar would close in it: an out-of-sample run that never tested
    anything). `after`: the data a test window needs after its end, the candle whose
    open closes its last position (the last window's too)."""
    step = test if step is None else step
    if train <= 0 or test <= 0 or step <= 0:
        raise ConfigError("--train, --test and --step must be positive durations")
    grid = BarGrid(bar, bar_edge)
    for flag, span in (("--train", train), ("--test", test), ("--step", step)):
        grid.whole(flag, span)
    if step < test:
        raise ConfigError(
            f"--step {format_duration(step)} is shorter than --test {format_duration(test)}:"
            " test windows would overlap"
        )
    first = grid.first_edge(start)
    plans = []
    k = 0
    while True:
        train_start = first if anchored else first + k * step
        train_end = first + train + k * step
        if train_end + test + after > end:
            break
        plans.append(WindowPlan(k, train_start, train_end, train_end, train_end + test))
        k += 1
    if not plans:
        raise ConfigError(
            f"no walk-forward window fits: the data spans {format_duration(end - start)}"
            f"{_from_edge(first - start)}, a window needs {format_duration(train + test)}"
            f" (--train + --test){_and_after(after)}"
        )
    return plans


def _from_edge(skipped: int) -> str:
    return f" ({format_duration(skipped)} of it before the first bar edge)" if skipped else ""


def _and_after(after: int) -> str:
    if not after:
        return ""
    return f" and the {format_duration(after)} candle after it (where its last position is closed)"


@dataclass(slots=True)
class WalkForwardResult:
    windows: list[WindowRecord] = field(default_factory=list)
    run: RunResult | None = None


BackendFactory = Callable[[TrialJob, Dataset], Backend]


def _why_no_trial(study: optuna.Study) -> str:
    """What the failed trials of a window say: the first one's reason, and the orders
    refused across them (an order size under the minimum: a run that never trades)."""
    trials = study.get_trials(deepcopy=False)
    errors = [str(t.user_attrs["error"]) for t in trials if "error" in t.user_attrs]
    denied: Counter[str] = Counter()
    for t in trials:
        denied.update((t.user_attrs.get("metrics") or {}).get("denials") or {})
    why = f"; first: {short(errors[0], 120)}" if errors else ""
    if denied:
        why += f"; orders denied: {denials_text(denied)}"
    return why


def optimise_window(
    plan: WindowPlan,
    job: TrialJob,
    data: Dataset,
    spec: StudySpec,
    make_backend: BackendFactory,
    on_trial: Callable[[TrialOutcome], None] | None = None,
) -> WindowRecord:
    """The study of one training window (its own name) and what it chose."""
    train = data.between(plan.train_start, plan.train_end)
    backend = make_backend(job, train)
    try:
        study = run_study(spec, backend, on_trial=on_trial).study
    finally:
        backend.close()
    best = best_trials(study)
    if not best:
        raise ConfigError(
            f"window {plan.index}: no trial completed on the training window (every parameter"
            f" set failed or had an undefined objective{_why_no_trial(study)}): widen the"
            " window or the space"
        )
    sharpes = [
        float(t.user_attrs["moments"][1])
        for t in study.get_trials(deepcopy=False)
        if t.state.name == "COMPLETE" and "moments" in t.user_attrs
    ]
    return WindowRecord(
        window=plan.index,
        train_start=plan.train_start,
        train_end=plan.train_end,
        test_start=plan.test_start,
        test_end=plan.test_end,
        params=dict(best[0].params),
        in_sample={**in_sample_metrics(best[0]), "tried": tried(study)},
        sharpes=sharpes,
    )


def in_sample_metrics(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The chosen trial's metrics and how many returns its Sharpe ratio came from
    (`returns`, 0 when it has none): the report flags one from too little data."""
    moments = trial.user_attrs.get("moments")
    return {**trial_metrics(trial), "returns": int(moments[0]) if moments else 0}


def out_of_sample_settings(settings: Settings, windows: list[WindowRecord]) -> Settings:
    """The study's settings with the `walkforward` strategy and mode, stored in full."""
    inner = settings.strategy
    rows = [[w.test_start, w.test_end, {**inner.params, **w.params}] for w in windows]
    strategy = inner.model_copy(
        update={
            "name": "walkforward",
            "params": {"strategy": inner.name, "windows": json.dumps(rows, sort_keys=True)},
        }
    )
    run = settings.run.model_copy(update={"mode": RunMode.WALKFORWARD, "record": "full"})
    mock = settings.mock.model_copy(update={"start": iso_utc(windows[0].test_start)})
    return settings.model_copy(update={"strategy": strategy, "run": run, "mock": mock})


def run_out_of_sample(
    settings: Settings, data: Dataset, windows: list[WindowRecord], **run_options: Any
) -> RunResult:
    """The stitched out-of-sample run, stored with its windows."""
    oos = out_of_sample_settings(settings, windows)
    # and the candle after the last window, whose open closes its last position (as the
    # next window's first candle does for the others)
    tested = data.between(windows[0].test_start, windows[-1].test_end + data.interval_ms)
    result = run_coroutine(run_bot(oos, feed=tested.feed(), **run_options))
    with RunStore(result.db_path) as store, store.transaction():
        save_windows(store.connection, result.run_id, windows)
    return result
