"""Calibrating the paper fill model on a live run's capture (SPEC 14, `drift --calibrate`).

The capture is replayed with candidate models into a scratch database and each replay's
drift from the live run is scored; the best candidate's profile lines are the answer.

Score (lower is better): median |slippage drift| in bps + 10 bps per unit of fill-rate
drift + 10 bps per unit of missing signal agreement + 100 bps per unit of PnL tracking
error. Search, in two stages to keep it to about twenty replays: first slippage and
latency under `touch` (slippage_bps in {0, 1, 2.5, 5}, latency constant at the live
median round trip or empirical); then, with the best of those, the resting-order model
(touch, penetration 1 / 2 / 5 ticks, queue risk_averse / power:2 / power:3 / log).
A run with several portfolios is scored by the mean of its portfolios' scores (one
paper venue serves them all, so one fill model fits them together), or by the one
portfolio asked for. Deterministic: the replays are."""

import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from perps_bot.feeds.replay import ReplayFeed, round_trip_latencies
from perps_bot.metrics.drift import ArrivalMids, Drift, compare, portfolio_runs
from perps_bot.orchestrator.replay import FillChoice, run_replay
from perps_bot.storage import RunStore


@dataclass(frozen=True, slots=True)
class Trial:
    choice: FillChoice
    drifts: list[Drift]  # one per portfolio compared
    score: float


def score(drift: Drift) -> float:
    s = drift.summary

    def value(name: str, worst: float) -> float:
        v = s.get(name)
        return worst if v is None else abs(float(v))

    return (
        value("median_slippage_drift_bps", 100.0)
        + 10.0 * value("fill_rate_drift", 1.0)
        + 10.0 * (1.0 - float(s.get("signal_agreement") or 0.0))
        + 100.0 * value("pnl_tracking_error", 1.0)
    )


def candidates_latency(live_ms: Sequence[int]) -> list[FillChoice]:
    median = int(statistics.median(live_ms)) if live_ms else 0
    latencies = [FillChoice(latency="constant", latency_ms=median)]
    if live_ms:
        latencies.append(FillChoice(latency="empirical"))
    return [
        replace(lat, fill_model="touch", slippage_bps=slip)
        for slip in (0.0, 1.0, 2.5, 5.0)
        for lat in latencies
    ]


def candidates_model(best: FillChoice) -> list[FillChoice]:
    models = [FillChoice(fill_model="penetration", penetration_ticks=t) for t in (1, 2, 5)]
    models += [FillChoice(fill_model="queue", queue_model=q)
               for q in ("risk_averse", "power:2", "power:3", "log")]  # fmt: skip
    return [replace(best, fill_model=m.fill_model, penetration_ticks=m.penetration_ticks,
                    queue_model=m.queue_model) for m in models]  # fmt: skip


def calibrate(
    folder: Path,
    live_store: RunStore,
    live_run: str,
    *,
    portfolio: str | None = None,
    say: Callable[[str], None] = lambda text: None,
) -> list[Trial]:
    """Every trial, best first."""
    events = ArrivalMids(ReplayFeed(folder).iter_events())  # once, for every trial
    live_ms = round_trip_latencies(folder)
    trials: list[Trial] = []
    with tempfile.TemporaryDirectory(prefix="perps-bot-calibrate-") as scratch:
        db = str(Path(scratch) / "calibrate.sqlite")

        def trial(choice: FillChoice) -> Trial:
            _, result = run_replay(folder, choice, db=db, log_dir=str(Path(scratch) / "logs"))
            with RunStore(db) as store:
                drifts = [compare(live_store, live, store, paper, events, live_ms)
                          for _, live, paper in portfolio_runs(
                              live_store, live_run, store, result.run_id, portfolio)]  # fmt: skip
            done = Trial(choice, drifts, statistics.fmean(score(d) for d in drifts))
            say(f"  {describe(choice):<60} score {done.score:8.3f}")
            return done

        trials += [trial(c) for c in candidates_latency(live_ms)]
        best = min(trials, key=lambda t: t.score).choice
        trials += [trial(c) for c in candidates_model(best)]
    return sorted(trials, key=lambda t: t.score)


def describe(choice: FillChoice) -> str:
    parts = [choice.fill_model or "touch"]
    if choice.fill_model == "penetration":
        parts.append(f"{choice.penetration_ticks} ticks")
    if choice.fill_model == "queue":
        parts.append(str(choice.queue_model))
    if choice.latency == "empirical":
        parts.append("latency empirical")
    else:
        parts.append(f"latency {choice.latency_ms} ms")
    parts.append(f"slippage {choice.slippage_bps:g} bps")
    return ", ".join(parts)
