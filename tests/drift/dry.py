"""A dry run of the canary profile on the loopback emulator, as the capture, replay and
drift tests record it (one strategy, or portfolios): for 3 s, or until it has seen what
the test checks (bounded by UNTIL_S; a fixed 3 s of wall time is too little on a
loaded machine)."""

from collections.abc import Callable
from typing import Any

from perps_bot.config import load_settings
from perps_bot.orchestrator.runner import Run, run_bot
from perps_emulator import EmulatorServer
from tests.live.live_helpers import UNTIL_S, run_until

PROBE = "tests.drift.drift_strategy:DriftProbe"


async def dry_run(
    server: EmulatorServer,
    run_dirs: dict[str, str],
    strategy: str = PROBE,
    timeframe: str = "1m",
    *,
    until: Callable[[Run], bool] | None = None,
    db: str | None = None,
    portfolios: list[dict[str, Any]] | None = None,
    mock: dict[str, Any] | None = None,
) -> Any:
    """The run's result; `until`: it runs until that holds (else 3 s); `db`: its
    database (the profile's otherwise); `portfolios`: several strategies side by side
    instead of `strategy`; `mock`: the paper venue's fill model (the profile's `mock:`)."""
    run: dict[str, Any] = {"dry_run": True, "live_view": False, **run_dirs}
    run["duration"] = "3s" if until is None else f"{UNTIL_S}s"
    if db is not None:
        run["database"] = db
    overrides: dict[str, Any] = {
        "run": run,
        "exchange": {"base_url": server.base_url, "poll_interval": "100ms"},
    }
    if mock is not None:
        overrides["mock"] = mock
    if portfolios is not None:
        overrides["portfolios"] = portfolios
    else:
        overrides["strategy"] = {"name": strategy, "params": {"every": 2}, "timeframe": timeframe}
    settings = load_settings("canary", overrides)
    if until is None:
        return await run_bot(settings, progress=False)
    return await run_until(settings, until)


def filled(run: Run, fills: int = 1) -> bool:
    """Every portfolio of the run has at least `fills` fills."""
    return all(p.rec.fills >= fills for p in run.orchestrator.portfolios)
