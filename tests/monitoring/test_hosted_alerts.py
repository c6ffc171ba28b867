"""A process hosting several runs (the session server): each run's `error` alerts are
its own ERROR lines, sent to its own targets, never another session's."""

import asyncio
import logging

from perps_bot.config import AlertsConfig
from perps_bot.monitoring import hosted_run_log
from perps_bot.monitoring.alerts import Alerts


async def test_each_hosted_run_alerts_only_its_own_error_lines() -> None:
    delivered: dict[str, list[tuple[str, str]]] = {"dev": [], "prod": []}
    started, logged = asyncio.Barrier(2), asyncio.Barrier(2)

    async def session(profile: str) -> None:
        with hosted_run_log():  # what run_bot enters in a hosted run's task
            out = delivered[profile]
            alerts = Alerts(AlertsConfig(on=["error"]), name=f"perps-bot {profile}",
                            targets=[("x", lambda t, b: out.append((t, b)) is None)])  # fmt: skip
            await started.wait()
            logging.getLogger("perps_bot.run").error("%s: venue refused us for good", profile)
            await logged.wait()
            assert alerts.close()

    await asyncio.gather(session("dev"), session("prod"))
    assert delivered == {
        "dev": [("perps-bot dev: error", "dev: venue refused us for good")],
        "prod": [("perps-bot prod: error", "prod: venue refused us for good")],
    }
