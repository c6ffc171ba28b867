"""Two portfolios on one exchange account (SPEC 10), the whole canary bot against the
emulator: both trade ETH through the one venue, each fill is booked to the portfolio
whose client id it carries, and the periodic reconciliation finds the account equal to
their sum (no portfolio halted, no position adopted)."""

import json
import sqlite3
from pathlib import Path

import pytest

from perps_bot.config import load_settings
from perps_bot.orchestrator.runner import run_bot
from perps_emulator import EmulatorServer
from tests.live.live_helpers import API_KEY, API_SECRET

pytestmark = pytest.mark.integration
FLIP = "tests.live.canary_strategy:FlipOnce"


async def test_two_portfolios_share_one_account_and_reconcile_to_their_sum(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    settings = load_settings(
        "canary",
        {
            "run": {"duration": "4s", "live_view": False, **run_dirs},
            "exchange": {
                "base_url": emulator.base_url,
                "poll_interval": "100ms",
                "reconcile_interval": "500ms",
                "api_key": API_KEY,
                "api_secret": API_SECRET,
            },
            "risk": {"max_position_notional": 200.0, "max_order_notional": 200.0},
            "portfolios": [
                {"id": "one", "strategy": FLIP, "params": {"hold": 1000}},
                {
                    "id": "two",
                    "strategy": FLIP,
                    "params": {"hold": 1000},
                    "order_size": {"ETH-PERP": 0.02},
                },
            ],
        },
    )
    result = await run_bot(settings, progress=False)
    assert result.status == "completed"
    sent = sorted(o.client_order_id for o in emulator.state.orders.values())
    assert len(sent) == 2 and sent[0].endswith("x0x1") and sent[1].endswith("x1x1")
    assert emulator.state.positions["ETHUSDT"].amount == pytest.approx(0.03)
    with sqlite3.connect(result.db_path) as conn:
        fills = conn.execute(
            "SELECT run_id, client_id, size, position_after FROM fills ORDER BY run_id"
        ).fetchall()
        states = conn.execute("SELECT portfolio, state FROM trading_state").fetchall()
        balances = conn.execute(
            "SELECT portfolio, initial_balance FROM runs WHERE parent_run_id=? ORDER BY rowid",
            (result.run_id,),
        ).fetchall()
    assert fills == [
        (f"{result.run_id}.one", sent[0], 0.01, 0.01),
        (f"{result.run_id}.two", sent[1], 0.02, 0.02),
    ]
    assert sorted(states) == [("one", "ACTIVE"), ("two", "ACTIVE")]
    assert balances == [("one", 250.0), ("two", 250.0)]
    events = [json.loads(line) for line in (Path(run_dirs["log_dir"]) / "events.jsonl").open()]
    reconciles = [e for e in events if e["type"] == "reconcile"]
    assert len(reconciles) >= 3  # at start and every 500 ms
    assert all(e["mismatched"] == [] for e in reconciles)
