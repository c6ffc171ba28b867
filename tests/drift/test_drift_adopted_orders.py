"""The drift report (SPEC 14) compares the decisions of a live run and of its replay: an
order a restarted live run found resting on the exchange (left by its earlier run) is
no decision of this run, and its replay cannot make it. Measured on main: such a limit
buy, filled during the run, counted as a live order the replay missed: signal agreement
0 (paired 0 of 1) and a live fill rate of 1 against none, though both runs decided
exactly the same (nothing). Now orders created before the live run started are left out
of the orders compared (their fills stay in its PnL, fees and equity)."""

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from perps_bot.cli.app import app
from perps_bot.config import load_settings
from perps_bot.orchestrator.runner import Run
from perps_emulator import EmulatorServer
from tests.drift.test_replay_orders_before_start import left_resting
from tests.live.live_helpers import API_KEY, API_SECRET, UNTIL_S, run_until

pytestmark = pytest.mark.integration


def _drift(db: str, run_id: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["drift", "--live", run_id, "--db", db, "--format", "json"])
    return result.exit_code, result.stdout, result.stderr


async def test_an_order_left_by_an_earlier_run_is_no_decision_of_the_live_run(
    in_repo: Path, run_dirs: dict[str, str], tmp_path: Path, make_client: Any
) -> None:
    db = str(tmp_path / "canary.sqlite")
    async with EmulatorServer(symbols=("ETHUSDT",), seed=5, tick_interval_s=0.2,
                              volatility=1e-9) as server:  # fmt: skip
        price = await left_resting(server, make_client, level=0, client_id="earlierrun2")
        moved: list[bool] = []

        def filled_then(run: Run) -> bool:
            books = run.capture.counts["books"] if run.capture is not None else 0
            if books >= 3 and not moved:
                server.set_price("ETHUSDT", price * 0.99)  # through the resting buy
                moved.append(True)
            return bool(moved) and run.recorder.fills >= 1 and books >= 6

        settings = load_settings("canary", {
            "run": {"duration": f"{UNTIL_S}s", "live_view": False, "database": db, **run_dirs},
            "exchange": {"base_url": server.base_url, "poll_interval": "100ms",
                         "api_key": API_KEY, "api_secret": API_SECRET},
            "strategy": {"name": "tests.drift.drift_strategy:DriftProbe",
                         "params": {"every": 1_000_000}},
        })  # fmt: skip
        live = await run_until(settings, filled_then)
    assert live.status == "completed" and live.fills == 1
    code, out, err = await asyncio.to_thread(_drift, db, live.run_id)
    assert code == 0, err
    summary = json.loads(out)["summary"]
    assert (summary["live_orders"], summary["paper_orders"]) == (0, 0)
    assert summary["signal_agreement"] == 1.0
    assert summary["live_fill_rate"] is None
