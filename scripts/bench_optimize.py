"""The optimisation rows of scripts/bench.py: `perps-bot optimize` of sma_cross (fast
5..50, slow 60..200, objective sharpe) over the bench's synthetic candles, one study
per backend (local processes, a local Ray): trials per minute over the trials
themselves (the command's own timer), the whole command's wall time, and a completed
trial's cost in a warm worker against the single backtest command of the same candles.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

SYMBOL = "SYN-PERP"


class Child(Protocol):
    """A finished child process (bench.ChildRun)."""

    @property
    def seconds(self) -> float: ...
    @property
    def returncode(self) -> int: ...
    @property
    def stdout(self) -> str: ...
    @property
    def stderr(self) -> str: ...


@dataclass(frozen=True)
class StudyRun:
    """How the bench runs a study: its command, environment and files."""

    cmd: list[str]
    env: dict[str, str]
    work: Path
    profile: Path
    data: Path
    trials: int
    run_child: Callable[[list[str], dict[str, str]], Child]

    def args(self, backend: list[str], study: str) -> list[str]:
        """`perps-bot optimize` of sma_cross fast/slow over the data, study in `work`."""
        return [*self.cmd, "optimize", "--profile", str(self.profile), "--data",
                str(self.data), "--symbol", SYMBOL, "--strategy", "sma_cross", "--space",
                "fast=int:5:50", "--space", "slow=int:60:200", "--objective", "sharpe",
                "--trials", str(self.trials), "--study", study, "--storage",
                str(self.work / "studies.sqlite"), "--no-store", *backend]  # fmt: skip


@dataclass(frozen=True)
class StudyBench:
    label: str
    wall: float  # the whole command: start-up, workers, trials, results table
    loop_seconds: float  # the trials alone, as the command measures them
    trials: int
    pruned: int
    median_trial: float  # a trial in a warm worker (seconds, completed trials)

    @property
    def per_minute(self) -> float:
        return 60.0 * self.trials / self.loop_seconds


def bench_study(setup: StudyRun, backend: list[str], label: str) -> StudyBench:
    import optuna

    study = f"bench-{label.split()[0]}"
    run = setup.run_child(setup.args(backend, study), setup.env)
    if run.returncode != 0:
        tail = (run.stderr or run.stdout).strip().splitlines()[-3:]
        raise SystemExit(f"{label} failed (exit {run.returncode}): {' | '.join(tail)}")
    line = next(x for x in run.stdout.splitlines() if "trials per minute" in x)
    loop = float(line.split(" trials in ")[1].split(" s")[0])
    storage = f"sqlite:///{setup.work / 'studies.sqlite'}"
    loaded = optuna.load_study(study_name=study, storage=storage)
    done = [t for t in loaded.trials if t.state.name == "COMPLETE"]
    pruned = sum(t.state.name == "PRUNED" for t in loaded.trials)
    seconds = (
        statistics.median([float(t.user_attrs["seconds"]) for t in done]) if done else float("nan")
    )
    result = StudyBench(label, run.seconds, loop, len(loaded.trials), pruned, seconds)
    print(f"  {label}: {result.trials} trials ({pruned} pruned) in {loop:.1f} s ="
          f" {result.per_minute:.1f} trials/min; command {run.seconds:.1f} s wall;"
          f" median completed trial {seconds:.3f} s", flush=True)  # fmt: skip
    return result


def optimize_benchmarks(
    setup: StudyRun, backends: list[tuple[str, list[str]]], single: float | None
) -> list[str]:
    """One study per backend (label, flags); the summary lines of the bench."""
    results = [bench_study(setup, backend, label) for label, backend in backends]
    lines = []
    for r in results:
        ratio = (
            f", {r.median_trial / single:.0%} of a single backtest command ({single:.2f} s)"
            if single
            else ""
        )
        lines.append(f"optimize {r.label}: {r.per_minute:.1f} trials/min ({r.trials} trials,"
                     f" {r.pruned} pruned, {r.loop_seconds:.1f} s; command {r.wall:.1f} s);"
                     f" a completed trial {r.median_trial:.3f} s{ratio}")  # fmt: skip
    if len(results) == 2:
        local, ray = results
        lines.append(f"ray vs local on the same cores: {ray.per_minute / local.per_minute:.0%}"
                     " of the local trials per minute")  # fmt: skip
    return lines
