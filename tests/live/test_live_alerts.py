"""Alerts of a live run that no ERROR line and no halt carries (SPEC 12), against the
loopback emulator: an exchange outage mid-run (one alert when trading is impaired, one
when the exchange answers again, not one per failed call), and a reconciliation that
found the exchange's position differing from the books of a single portfolio (several
portfolios halt and alert on a difference they cannot attribute; one adopted it with a
WARNING only)."""

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import load_settings
from perps_bot.orchestrator.runner import Run
from perps_emulator import EmulatorServer, Fault
from tests.harness.alert_receiver import alert_receiver
from tests.live.live_helpers import API_KEY, API_SECRET, UNTIL_S, run_until, until_long_opened

pytestmark = pytest.mark.integration


async def _alerted_canary(
    server: EmulatorServer,
    run_dirs: dict[str, str],
    fault: Fault,
    done: Callable[[list[dict[str, Any]]], bool],
    **exchange: Any,
) -> list[dict[str, Any]]:
    """A canary run of FlipOnce (one long, held) alerting to a local receiver; `fault` is
    injected once the long is open, and the run ends once `done(alerts received)`.
    Returns the alerts received."""
    with alert_receiver() as (port, received):
        settings = load_settings(
            "canary",
            {
                "run": {
                    "duration": f"{UNTIL_S}s",
                    "dry_run": False,
                    "live_view": False,
                    **run_dirs,
                },
                "exchange": {
                    "base_url": server.base_url,
                    "api_key": API_KEY,
                    "api_secret": API_SECRET,
                    "poll_interval": "100ms",
                    "backoff_base": "10ms",
                    "backoff_max": "20ms",
                    **exchange,
                },
                "strategy": {
                    "name": "tests.live.canary_strategy:FlipOnce",
                    "params": {"hold": 10_000},
                },
                "risk": {"stale_after": "1s"},
                "alerts": {"urls": [f"json://127.0.0.1:{port}"], "on": ["error", "halt"]},
            },
        )

        def finished(_: Run) -> bool:
            return done(received)

        task = asyncio.create_task(run_until(settings, finished))
        await until_long_opened(server, task)
        server.inject(fault)
        result = await task
        assert result.status == "completed"
        return list(received)


async def test_an_exchange_outage_mid_run_alerts_once_and_once_more_when_it_is_over(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """Every call failing for a while (the circuit breaker opened, orders denied) gave
    WARNING lines and a 503 on /health, and no alert: the trader learnt nothing."""

    def over(received: list[dict[str, Any]]) -> bool:
        if any("not answering" in r["message"] for r in received):
            emulator.clear_faults()  # the exchange is back once the outage was alerted
        return any("answering again" in r["message"] for r in received)

    received = await _alerted_canary(
        emulator,
        run_dirs,
        Fault("status", method="*", path="*", count=10**6),
        over,
    )
    down = [r for r in received if "not answering" in r["message"]]
    back = [r for r in received if "answering again" in r["message"]]
    assert len(down) == 1 and len(back) == 1, received
    assert down[0]["title"] == "perps-bot canary: exchange down"
    assert back[0]["title"] == "perps-bot canary: exchange back"
    assert received.index(down[0]) < received.index(back[0])


async def test_a_reconciliation_difference_of_a_single_portfolio_is_alerted(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """The exchange's position differs from the books (a trade by hand, 0.02 held where
    the bot bought 0.01): the portfolio adopts it, and the trader is told."""

    def alerted(received: list[dict[str, Any]]) -> bool:
        return any("reconciliation" in r["message"] for r in received)

    positions = "/fapi/v3/positionRisk"
    received = await _alerted_canary(
        emulator,
        run_dirs,
        Fault("rewrite", method="GET", path=positions, fields={"positionAmt": "0.02"}, count=10**6),
        alerted,
        reconcile_interval="200ms",
    )
    (alert,) = [r for r in received if "reconciliation" in r["message"]]
    assert alert["title"] == "perps-bot canary: position differs", alert
    assert "ETH-PERP +0.01 here, +0.02 on the exchange" in alert["message"], alert
