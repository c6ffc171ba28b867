"""Replaying a capture through the one orchestrator (SPEC 14): the run's own strategy,
parameters and profile (the config stored in the capture), the instruments it traded,
the paper venue with the fill model asked for, on a simulated clock that starts at
the capture's first event. Stored as a run of kind `replay` whose config names the
run it replays (`run.replay_of`).

Deterministic: the same capture, fill model and seed give the same fills."""

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from rich.console import Console

from perps_bot.config import ConfigError, Settings, load_settings
from perps_bot.domain import RunMode, iso_utc
from perps_bot.feeds.replay import ReplayFeed, round_trip_latencies
from perps_bot.orchestrator.runner import RunResult, run_bot_sync


@dataclass(frozen=True, slots=True)
class FillChoice:
    """The paper venue's fill model for a replay; None keeps the captured profile's value."""

    fill_model: str | None = None  # touch | penetration | queue
    penetration_ticks: int | None = None
    queue_model: str | None = None  # risk_averse | power:N | log
    latency: str | None = None  # constant | empirical
    latency_ms: int | None = None  # the constant latency
    slippage_bps: float | None = None

    def mock_overrides(self, folder: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("fill_model", "penetration_ticks", "queue_model", "slippage_bps"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.latency_ms is not None:
            out["latency"] = f"{self.latency_ms}ms"
        if self.latency is not None:
            out["latency_model"] = self.latency
        if self.latency == "empirical":
            samples = round_trip_latencies(folder)
            if not samples:
                raise ConfigError(
                    f"--latency empirical: capture {folder} has no measured order round trip"
                    " (a dry run's orders never leave the bot): use --latency constant"
                )
            out["latency_samples"] = samples
        return out

    def profile_lines(self, latency_samples: Sequence[int] = ()) -> list[str]:
        """The profile's `mock:` lines that select this model. Empirical latency draws
        from `latency_samples` (the capture's round trips, `round_trip_latencies`): a
        profile that says `latency_model: empirical` without them is refused."""
        lines = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            key = {"latency": "latency_model", "latency_ms": "latency"}.get(f.name, f.name)
            shown = f"{value}ms" if f.name == "latency_ms" else value
            lines.append(f"  {key}: {shown}")
        if self.latency == "empirical":
            samples = ", ".join(str(int(ms)) for ms in latency_samples)
            lines.append(f"  latency_samples: [{samples}]")
        return ["mock:", *lines]


def replay_settings(
    feed: ReplayFeed,
    choice: FillChoice,
    *,
    db: str | None = None,
    seed: int | None = None,
    log_dir: str | None = None,
) -> Settings:
    """The captured run's settings, turned into its replay."""
    meta = feed.meta
    config: dict[str, Any] = {k: v for k, v in meta["config"].items()}
    config["exchange"] = {**config.get("exchange", {}), "api_key": None, "api_secret": None}
    run = dict(config.get("run", {}))
    # run.symbols stays the captured config's: with several portfolios it is only the
    # default of those that name none (the capture holds every traded symbol)
    run.update(mode=RunMode.REPLAY, duration=None, capture=False,
               replay_of=meta.get("run_id"), live_view=False)  # fmt: skip
    if db is not None:
        run["database"] = db
    if seed is not None:
        run["seed"] = seed
    if log_dir is not None:
        run["log_dir"] = log_dir
    config["run"] = run
    config["instruments"] = meta["instruments"]
    balance = meta.get("initial_balance")
    if balance:  # a live run trades the balance it found on the exchange
        config["account"] = {**config.get("account", {}), "initial_balance": balance}
    mock = dict(config.get("mock", {}))
    # the captured profile's fill model, latency model included (a dry run filled with
    # it), unless the choice says otherwise
    mock.update(start=iso_utc(feed.start_ts))
    mock.update(choice.mock_overrides(feed.folder))
    config["mock"] = mock
    return load_settings("dev", config)


def run_replay(
    folder: Path,
    choice: FillChoice,
    *,
    db: str | None = None,
    seed: int | None = None,
    console: Console | None = None,
    progress: bool = False,
    log_dir: str | None = None,
    resume: str | None = None,
) -> tuple[Settings, RunResult]:
    """Replay the capture at `folder`; the run's settings and result. `resume` ('latest'
    or a run id): go on with an interrupted or crashed replay of it from its last
    checkpoint (SPEC 9), with the same fill model and seed."""
    feed = ReplayFeed(folder)
    settings = replay_settings(feed, choice, db=db, seed=seed, log_dir=log_dir)
    result = run_bot_sync(
        settings,
        feed=feed,
        progress=progress,
        console=console or Console(quiet=True),
        resume=resume,
    )
    return settings, result
