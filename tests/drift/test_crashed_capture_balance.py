"""A live run's capture (SPEC 14) holds the balance the run found on the exchange as
soon as it knows it: its replay trades that balance (orchestrator.replay reads it from
there). Measured on main it was written into meta.json only when the capture was
closed, so a live run that crashed (or was killed) left a capture without it, and its
replay traded the profile's account.initial_balance (canary's 500 against the
exchange's 10 000): sizes, risk caps and PnL of another account, and drift measured
paper against that."""

import json
from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import load_settings
from perps_bot.orchestrator.runner import Run
from perps_emulator import EmulatorServer
from tests.live.live_helpers import API_KEY, API_SECRET, UNTIL_S, run_until

pytestmark = pytest.mark.integration


async def test_a_live_capture_holds_the_exchanges_balance_while_the_run_goes_on(
    in_repo: Path, run_dirs: dict[str, str]
) -> None:
    seen: dict[str, Any] = {}

    def trading(run: Run) -> bool:
        """The run trades (its start's reconciliation is done): its capture as a crash
        now would leave it."""
        if run.orchestrator.last_ts is None:
            return False
        folder = Path(run_dirs["data_dir"]) / "captures" / run.run_id
        seen.update(json.loads((folder / "meta.json").read_text(encoding="utf-8")))
        return True

    async with EmulatorServer(symbols=("ETHUSDT",), seed=2, tick_interval_s=0.1,
                              initial_balance=10_000.0) as server:  # fmt: skip
        settings = load_settings("canary", {
            "run": {"duration": f"{UNTIL_S}s", "dry_run": False, "live_view": False,
                    **run_dirs},
            "exchange": {"base_url": server.base_url, "api_key": API_KEY,
                         "api_secret": API_SECRET, "poll_interval": "100ms"},
            "strategy": {"name": "tests.drift.drift_strategy:DriftProbe",
                         "params": {"every": 50}},
        })  # fmt: skip
        result = await run_until(settings, trading)
    assert result.status == "completed"
    assert settings.account.initial_balance == 500.0  # the profile's: not the exchange's
    assert seen["complete"] is False  # written by the run, not at its close
    assert seen.get("initial_balance") == pytest.approx(10_000.0)
