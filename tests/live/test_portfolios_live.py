"""Two portfolios on one exchange account (SPEC 10), the whole canary bot against the
emulator: both trade ETH through the one venue, each fill is booked to the portfolio
whose client id it carries, and the periodic reconciliation finds the account equal to
their sum (no portfolio halted, no position adopted)."""

import json
import sqlite3
from pathlib import Path

import pytest

from perps_bot.config import Settings, load_settings
from perps_bot.orchestrator.runner import Run, run_bot
from perps_bot.risk import RiskState
from perps_bot.storage import RunStore
from perps_bot.storage import durable as stored
from perps_emulator import EmulatorServer
from tests.live.live_helpers import API_KEY, API_SECRET, run_until

pytestmark = pytest.mark.integration
FLIP = "tests.live.canary_strategy:FlipOnce"


def two_portfolios(emulator: EmulatorServer, run_dirs: dict[str, str]) -> Settings:
    return load_settings(
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
            # within the canary's hard caps together (50 USDT: ETH is about 3000 here)
            "portfolios": [
                {
                    "id": "one",
                    "strategy": FLIP,
                    "params": {"hold": 1000},
                    "order_size": {"ETH-PERP": 0.007},
                },
                {
                    "id": "two",
                    "strategy": FLIP,
                    "params": {"hold": 1000},
                    "order_size": {"ETH-PERP": 0.009},
                },
            ],
        },
    )


async def test_two_portfolios_share_one_account_and_reconcile_to_their_sum(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    settings = two_portfolios(emulator, run_dirs)
    result = await run_bot(settings, progress=False)
    assert result.status == "completed"
    sent = sorted(o.client_order_id for o in emulator.state.orders.values())
    assert len(sent) == 2 and sent[0].endswith("x0x1") and sent[1].endswith("x1x1")
    assert emulator.state.positions["ETHUSDT"].amount == pytest.approx(0.016)
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
        (f"{result.run_id}.one", sent[0], 0.007, 0.007),
        (f"{result.run_id}.two", sent[1], 0.009, 0.009),
    ]
    assert sorted(states) == [("one", "ACTIVE"), ("two", "ACTIVE")]
    assert balances == [("one", 250.0), ("two", 250.0)]
    events = [json.loads(line) for line in (Path(run_dirs["log_dir"]) / "events.jsonl").open()]
    reconciles = [e for e in events if e["type"] == "reconcile"]
    assert len(reconciles) >= 3  # at start and every 500 ms
    assert all(e["mismatched"] == [] for e in reconciles)


async def test_a_portfolios_stored_peak_does_not_halt_its_fresh_books(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """A portfolio of several keeps its own books: a live run starts them at its capital
    (no balance of its own to adopt from the exchange), so the equity peak of its last
    run (it had doubled) is no drawdown of these books; its halt would carry over."""
    settings = two_portfolios(emulator, run_dirs)
    with RunStore(settings.database_path) as store, store.transaction():
        for pid in ("one", "two"):
            peak = RiskState("ACTIVE", "", peak=500.0, last_equity=500.0)
            stored.save_trading_state(store.connection, profile="canary", state="ACTIVE",
                                      detail="", risk=peak.to_json(), run_id="earlier",
                                      source="run", portfolio=pid)  # fmt: skip
    result = await run_bot(settings, progress=False)
    with sqlite3.connect(result.db_path) as conn:
        states = conn.execute("SELECT portfolio, state FROM trading_state").fetchall()
    assert sorted(states) == [("one", "ACTIVE"), ("two", "ACTIVE")]
    assert len(emulator.state.orders) == 2, "both portfolios trade"


BID = "tests.live.canary_strategy:RestingBid"


def bidders(emulator: EmulatorServer, run_dirs: dict[str, str], bids: int) -> Settings:
    """Two portfolios on ETH: `one` never bids, `two` places `bids` resting bids 10%
    under the market."""
    return load_settings(
        "canary",
        {
            "run": {"duration": "60s", "live_view": False, **run_dirs},
            "exchange": {"base_url": emulator.base_url, "poll_interval": "100ms",
                         "reconcile_interval": "300ms", "api_key": API_KEY,
                         "api_secret": API_SECRET},
            "portfolios": [
                {"id": "one", "strategy": BID, "params": {"bids": 0}},
                {"id": "two", "strategy": BID, "params": {"bids": bids, "below": 0.9}},
            ],
        },
    )  # fmt: skip


async def test_an_earlier_runs_order_fills_into_the_portfolio_that_placed_it(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """Portfolio two's bid is left resting when its run ends; it fills during the next
    run, which did not place it. The fill was booked to the first portfolio trading ETH
    (one): one's books held a position two paid for, and two's cash never moved."""
    first = await run_until(bidders(emulator, run_dirs, 1), lambda run: bool(emulator.state.orders))
    (resting,) = emulator.state.orders.values()
    assert resting.status == "NEW" and first.fills == 0
    moved: list[bool] = []

    def fill_the_bid(run: Run) -> bool:
        if not moved and run.orchestrator.last_ts is not None:
            emulator.set_price("ETHUSDT", resting.price * 0.98)
            moved.append(True)
        return (
            run.orchestrator.portfolios[0].rec.fills + run.orchestrator.portfolios[1].rec.fills > 0
        )

    second = await run_until(bidders(emulator, run_dirs, 0), fill_the_bid)
    with sqlite3.connect(second.db_path) as conn:
        booked = conn.execute(
            "SELECT run_id, client_id FROM fills WHERE run_id LIKE ?", (f"{second.run_id}.%",)
        ).fetchall()
    assert booked == [(f"{second.run_id}.two", resting.client_order_id)]
