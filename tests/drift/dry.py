"""A 3-second dry run of the canary profile on the loopback emulator, as the capture,
replay and drift tests record it (one strategy, or portfolios)."""

from typing import Any

from perps_bot.config import load_settings
from perps_bot.orchestrator.runner import run_bot
from perps_emulator import EmulatorServer

PROBE = "tests.drift.drift_strategy:DriftProbe"


async def dry_run(
    server: EmulatorServer,
    run_dirs: dict[str, str],
    strategy: str = PROBE,
    timeframe: str = "1m",
    *,
    db: str | None = None,
    portfolios: list[dict[str, Any]] | None = None,
) -> Any:
    """The run's result; `db`: its database (the profile's otherwise); `portfolios`:
    several strategies side by side instead of `strategy`."""
    run: dict[str, Any] = {"duration": "3s", "dry_run": True, "live_view": False, **run_dirs}
    if db is not None:
        run["database"] = db
    overrides: dict[str, Any] = {
        "run": run,
        "exchange": {"base_url": server.base_url, "poll_interval": "100ms"},
    }
    if portfolios is not None:
        overrides["portfolios"] = portfolios
    else:
        overrides["strategy"] = {"name": strategy, "params": {"every": 2}, "timeframe": timeframe}
    return await run_bot(load_settings("canary", overrides), progress=False)
