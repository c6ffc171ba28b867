"""The whole bot on the canary profile against the loopback emulator, for a few seconds of
wall time: dry-run (real books, simulated fills, no private call) and live (real orders
with client ids, reduce-only exit, leverage and margin mode set, keys never logged)."""

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import load_settings
from perps_bot.orchestrator.runner import RunResult, run_bot
from perps_emulator import EmulatorServer, Fault
from tests.live.live_helpers import API_KEY, API_SECRET

pytestmark = pytest.mark.integration

STRATEGY = "tests.live.canary_strategy:FlipOnce"


async def run_canary(
    server: EmulatorServer,
    run_dirs: dict[str, str],
    *,
    dry_run: bool,
    duration: str = "2s",
    exchange_overrides: dict[str, Any] | None = None,
) -> RunResult:
    exchange: dict[str, Any] = {"base_url": server.base_url, "poll_interval": "250ms"}
    exchange |= exchange_overrides or {}
    if not dry_run:
        exchange |= {"api_key": API_KEY, "api_secret": API_SECRET}
    settings = load_settings(
        "canary",
        {
            "run": {
                "duration": duration,
                "dry_run": dry_run,
                "live_view": False,
                "log_level": "DEBUG",
                **run_dirs,
            },
            "exchange": exchange,
            "strategy": {"name": STRATEGY, "params": {"hold": 3}},
        },
    )
    return await run_bot(settings, progress=False)


def logged_text(run_dirs: dict[str, str]) -> str:
    files = [p for p in Path(run_dirs["log_dir"]).rglob("*") if p.is_file()]
    assert files, "the run wrote no logs"
    return "\n".join(p.read_text(errors="replace") for p in files)


async def test_canary_dry_run_trades_on_real_books_without_private_calls(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    result = await run_canary(emulator, run_dirs, dry_run=True)
    assert result.status == "completed"
    assert result.fills == 2  # entry and exit, matched by MockVenue on the emulator's books
    assert emulator.private_calls() == []
    assert emulator.state.orders == {}
    paths = {path for _, path, _ in emulator.calls}
    assert {"/fapi/v1/depth", "/fapi/v1/premiumIndex"} <= paths


async def test_canary_live_places_real_orders_and_never_logs_keys(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    result = await run_canary(emulator, run_dirs, dry_run=False)
    assert result.status == "completed"
    assert result.fills == 2
    state = emulator.state
    assert state.leverage["ETHUSDT"] == 2 and state.margin_type["ETHUSDT"] == "ISOLATED"
    orders = sorted(state.orders.values(), key=lambda o: o.order_id)
    assert [(o.side, o.reduce_only, o.status) for o in orders] == [
        ("BUY", False, "FILLED"),
        ("SELL", True, "FILLED"),
    ]
    assert all(o.client_order_id.startswith("pb") for o in orders)
    assert state.positions["ETHUSDT"].amount == 0
    with sqlite3.connect(result.db_path) as conn:
        (initial,) = conn.execute(
            "SELECT initial_balance FROM runs WHERE run_id=?", (result.run_id,)
        ).fetchone()
    assert initial == 10_000.0  # the exchange's balance after reconciliation, not the profile's
    text = logged_text(run_dirs)
    assert "canary entry" in text or "live venue" in text
    assert API_KEY not in text and API_SECRET not in text


async def test_canary_live_rides_out_an_outage_and_reconciles(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    emulator.inject(Fault("status", method="GET", path="/fapi/v1/depth", count=4))
    emulator.inject(Fault("status", method="POST", path="/fapi/v1/order", count=2))
    # each failed order request leaves its outcome unknown: it is looked up until its
    # receive window (here 300 ms + 1 s of clock margin) has passed, then sent again;
    # a short backoff keeps the failed calls well inside the 5 s wall-clock run
    result = await run_canary(
        emulator,
        run_dirs,
        dry_run=False,
        duration="5s",
        exchange_overrides={
            "backoff_base": "20ms",
            "backoff_max": "100ms",
            "recv_window": "300ms",
        },
    )
    assert result.status == "completed"
    assert result.fills == 2
    assert len(emulator.state.orders) == 2  # retried, never doubled
    journal = (Path(run_dirs["log_dir"]) / "events.jsonl").read_text()
    reconciles = [json.loads(line) for line in journal.splitlines() if '"reconcile"' in line]
    assert [r["why"] for r in reconciles][:2] == ["start", "reconnect"]
