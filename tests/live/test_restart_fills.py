"""A live bot restarted soon after its previous run (SPEC 9: no acknowledged fill lost or
counted twice, the stops match the position held).

The start adopts the exchange's positions; later reconciliations look for exchange fills
no order of the run explains from a minute before the last one (clocks differ). The
fills the adopted positions already hold were in that minute too: the earlier run's own
entry (its order is not this run's) was booked again as an "exchange fill of another
order" at the first difference after the restart. And an order left open by an
earlier run is the fills of the run that followed it when it filled, booked once."""

import sqlite3
from pathlib import Path

import pytest

from perps_bot.config import Settings, load_settings
from perps_bot.orchestrator.runner import Run, run_bot
from perps_emulator import EmulatorServer
from tests.live.live_helpers import API_KEY, API_SECRET, UNTIL_S, run_until
from tests.live.test_protective_bot import resting, wait_for
from tests.live.test_protective_restart import ENTRY, protected_run, settings, stored_fills
from tests.plans.helpers import write_plan

pytestmark = pytest.mark.integration


def short_with_stop(emulator: EmulatorServer, run_dirs: dict[str, str]) -> Settings:
    """Short one order size (0.01 ETH) with a stop 1% above, held for the whole run."""
    return load_settings(
        "canary",
        {
            "run": {"duration": f"{UNTIL_S}s", "live_view": False, **run_dirs},
            "exchange": {"base_url": emulator.base_url, "poll_interval": "100ms",
                         "reconcile_interval": "300ms", "api_key": API_KEY,
                         "api_secret": API_SECRET},
            "strategy": {"name": "tests.live.canary_strategy:HoldOnce",
                         "params": {"hold": 100_000, "short": True, "stop": 0.01}},
        },
    )  # fmt: skip


def stops(emulator: EmulatorServer) -> list[tuple[str, float]]:
    """The waiting stop orders: (side, quantity)."""
    found = emulator.state.algo_orders.values()
    return sorted((o.side, o.quantity) for o in found if o.status == "NEW")


async def test_a_restart_books_an_exchange_fill_once_and_not_the_earlier_runs(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """The first run shorts 0.01 and protects it; the bot restarts at once and adopts the
    short. A buy of 0.004 by hand then closes part of it. The restarted run booked the
    first run's sell of 0.01 again with that buy (short 0.02 in its books, the buy's PnL
    and the sell's fee on a position it never held) before it adopted the exchange's.
    It books the buy alone, and its stop still covers the 0.006 left."""
    settings = short_with_stop(emulator, run_dirs)
    await run_until(settings, lambda run: stops(emulator) == [("BUY", 0.01)])
    bought: list[int] = []  # the books the restarted strategy had seen then

    def bought_and_reconciled(run: Run) -> bool:
        books = getattr(run.orchestrator.primary.strategy, "books", 0)
        if not bought:
            if books:  # the restarted run trades: its start adopted the short
                emulator.engine.place_order({"symbol": "ETHUSDT", "side": "BUY",
                                             "type": "MARKET", "quantity": "0.004",
                                             "reduceOnly": "true"})  # fmt: skip
                bought.append(books)
            return False
        held = run.orchestrator.primary.ledger.position_size("ETH-PERP")
        return held == pytest.approx(-0.006) or books > bought[0] + 30

    result = await run_until(settings, bought_and_reconciled)
    assert result.status == "completed" and bought
    assert emulator.state.positions["ETHUSDT"].amount == pytest.approx(-0.006)
    with sqlite3.connect(result.db_path) as conn:
        booked = conn.execute(
            "SELECT side, size, reason, position_after FROM fills WHERE run_id=? ORDER BY seq",
            (result.run_id,),
        ).fetchall()
    assert booked == [("buy", 0.004, "exchange fill of another order", pytest.approx(-0.006))]
    ((side, size),) = stops(emulator)  # reduce-only: at least the short's size
    assert side == "BUY" and size >= 0.006


async def test_an_order_an_earlier_run_left_is_booked_by_the_run_it_filled_in_only(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer, tmp_path: Path
) -> None:
    """The first run enters and leaves its stop and take-profit resting; the second
    adopts them, the take-profit fills and it books the close. The third found the first
    run's take-profit still open in the store, looked it up on the exchange (filled) and
    booked the close again, into the first run, as a fill that run never stored."""
    emulator.set_price("ETHUSDT", 3_000.0)
    plan = write_plan(tmp_path / "plan.csv", [ENTRY])
    db = await protected_run(emulator, run_dirs, plan)
    moved: list[bool] = []

    def closed_by_the_take_profit(run: Run) -> bool:
        if not moved:  # once the second run follows the first run's orders
            if len(run.orchestrator.primary.protection.working) == 2:
                emulator.set_price("ETHUSDT", 3_060.0)
                moved.append(True)
            return False
        return run.orchestrator.primary.ledger.position_size("ETH-PERP") == 0.0

    second = await run_until(settings(emulator, run_dirs, plan, duration=f"{UNTIL_S}s"),
                             closed_by_the_take_profit)  # fmt: skip
    assert second.status == "completed" and moved
    await wait_for(lambda: not resting(emulator), 30.0)  # the stop was cancelled
    third = await run_bot(settings(emulator, run_dirs, plan, duration="1s"), progress=False)
    assert third.status == "completed"
    assert [t.side for t in emulator.state.trades] == ["BUY", "SELL"]
    assert [f[:2] for f in stored_fills(db)] == [("buy", 0.01), ("sell", 0.01)]
