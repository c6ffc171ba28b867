"""Fills made while a live bot starts (SPEC 9: no acknowledged fill lost or counted twice).

An order an earlier run left resting (a stop) is found open by the venue's start and
followed from then on; recovery then looks up every order of the earlier runs whose row
is not final and books into that run what the exchange executed beyond what it stored.
The stop's trigger is made to happen at a chosen request of the start (the emulator's
route answers it after moving the price)."""

import dataclasses
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from perps_bot.orchestrator.runner import run_bot
from perps_emulator import EmulatorServer
from tests.live.test_protective_restart import ENTRY, protected_run, settings
from tests.plans.helpers import write_plan

pytestmark = pytest.mark.integration


def before_answering(
    emulator: EmulatorServer,
    route: tuple[str, str],
    act: Callable[[], None],
    when: Callable[[dict[str, str]], bool] = lambda _: True,
) -> None:
    """Run `act` once, just before the emulator answers the first `route` request
    (method, path) whose parameters `when` accepts."""
    answer = emulator.api.routes[route]
    done: list[bool] = []

    def handler(params: dict[str, str]) -> Any:
        if not done and when(params):
            done.append(True)
            act()
        return answer.handler(params)

    emulator.api.routes[route] = dataclasses.replace(answer, handler=handler)


def every_fill(db: Path) -> list[tuple[str, str, float, str, float]]:
    """Every run's fills, oldest first: (run id, side, size, reason, position after)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT run_id, side, size, reason, position_after FROM fills ORDER BY ts, seq"
        ).fetchall()
    return [(str(r), str(s), float(z), str(why), float(p)) for r, s, z, why, p in rows]


async def restarted_with_the_stop_triggered(
    emulator: EmulatorServer,
    run_dirs: dict[str, str],
    tmp_path: Path,
    route: tuple[str, str],
    when: Callable[[dict[str, str]], bool] = lambda _: True,
) -> tuple[str, list[tuple[str, str, float, str, float]]]:
    """A first run buys 0.01 with a stop at 2950 and stops (the stop rests); the next
    start triggers it at its first `route` request `when` accepts. The first run's id,
    and every fill stored."""
    emulator.set_price("ETHUSDT", 3_000.0)
    plan = write_plan(tmp_path / "plan.csv", [ENTRY])
    db = await protected_run(emulator, run_dirs, plan)
    ((first,),) = sqlite3.connect(db).execute("SELECT run_id FROM runs").fetchall()
    before_answering(emulator, route, lambda: emulator.set_price("ETHUSDT", 2_940.0), when)
    result = await run_bot(settings(emulator, run_dirs, plan, duration="1s"), progress=False)
    assert result.status == "completed"
    assert emulator.state.positions["ETHUSDT"].amount == 0.0  # the stop closed it
    return str(first), every_fill(db)


async def test_a_stop_that_triggers_while_the_venue_starts_is_booked_once(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer, tmp_path: Path
) -> None:
    """The stop triggers while the venue's start reads the account (after it listed the
    open orders): the venue's start hands the stop's fill out with its snapshot, which
    nobody books, and recovery books it into the first run, whose order it is, with
    that run's PnL. Once."""
    first, fills = await restarted_with_the_stop_triggered(
        emulator, run_dirs, tmp_path, ("GET", "/fapi/v3/account")
    )
    assert fills == [(first, "buy", 0.01, "plan r1", 0.01), (first, "sell", 0.01, "stop", 0.0)]


async def test_a_stop_that_triggers_before_recovery_looks_it_up_is_booked_once(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer, tmp_path: Path
) -> None:
    """The stop triggers after the venue's start found it open, just before recovery
    looks it up by its client id. Recovery booked its fill into the first run, and the
    start's reconciliation booked it again into the new run, whose books held nothing
    yet (a short of 0.01, a second fee), before it adopted the flat account. The venue
    now leaves to recovery what an order it follows executed up to recovery's look-up."""
    first, fills = await restarted_with_the_stop_triggered(
        emulator, run_dirs, tmp_path, ("GET", "/fapi/v1/algoOrder"), lambda p: "clientAlgoId" in p
    )
    assert fills == [(first, "buy", 0.01, "plan r1", 0.01), (first, "sell", 0.01, "stop", 0.0)]


async def test_a_stop_that_triggers_after_recovery_is_booked_once_with_its_runs_pnl(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer, tmp_path: Path
) -> None:
    """The stop triggers after recovery looked it up (still resting), as the start's
    reconciliation lists the account's trades."""
    first, fills = await restarted_with_the_stop_triggered(
        emulator, run_dirs, tmp_path, ("GET", "/fapi/v1/userTrades")
    )
    assert fills == [(first, "buy", 0.01, "plan r1", 0.01), (first, "sell", 0.01, "stop", 0.0)]


def run_positions(db: Path, run_id: str) -> dict[str, float]:
    """The positions a run's books hold (the positions table), by symbol."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT symbol, size FROM positions WHERE run_id=?", (run_id,))
        return {str(symbol): float(size) for symbol, size in rows.fetchall()}


async def test_a_stop_that_triggers_after_the_start_took_the_account_is_the_new_runs(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer, tmp_path: Path
) -> None:
    """The stop triggers after the start's reconciliation took the account (long 0.01),
    just before recovery looks it up the second time. Recovery booked its close into the
    first run, and the new run, whose books took the long, never had it: long 0.01
    against a flat exchange until the next reconciliation adopted the difference. What
    the start took is the first run's; the close after it is the new run's fill, with
    the exchange's commission for it."""
    emulator.set_price("ETHUSDT", 3_000.0)
    plan = write_plan(tmp_path / "plan.csv", [ENTRY])
    db = await protected_run(emulator, run_dirs, plan)
    ((first,),) = sqlite3.connect(db).execute("SELECT run_id FROM runs").fetchall()
    (stop,) = [o for o in emulator.state.algo_orders.values() if o.type == "STOP_MARKET"]
    asked: list[dict[str, str]] = []

    def second_look_up(params: dict[str, str]) -> bool:
        if params.get("clientAlgoId") == stop.client_algo_id:
            asked.append(params)
        return len(asked) == 2  # the first: recovery's, before the start took the account

    before_answering(emulator, ("GET", "/fapi/v1/algoOrder"),
                     lambda: emulator.set_price("ETHUSDT", 2_940.0), second_look_up)  # fmt: skip
    result = await run_bot(settings(emulator, run_dirs, plan, duration="1s"), progress=False)
    assert result.status == "completed"
    assert len(asked) >= 2 and emulator.state.positions["ETHUSDT"].amount == 0.0
    ((second,),) = (
        sqlite3.connect(db)
        .execute("SELECT run_id FROM runs WHERE run_id != ?", (first,))
        .fetchall()
    )
    assert every_fill(db) == [
        (first, "buy", 0.01, "plan r1", 0.01),
        (second, "sell", 0.01, "stop", 0.0),
    ]
    assert run_positions(db, second).get("ETH-PERP", 0.0) == 0.0
    # its books were the exchange's from the start: no later reconciliation adopted one
    # (there may be none: the wall-clock second can pass while a loaded machine starts)
    journal = (Path(run_dirs["log_dir"]) / "events.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in journal]
    later = [e for e in events if e["type"] == "reconcile" and e["run_id"] == second
             and e["why"] != "start"]  # fmt: skip
    assert all(e["mismatched"] == [] for e in later), later
    close = emulator.state.orders_by_client_id[stop.client_algo_id]
    charged = sum(t.commission for t in emulator.state.trades if t.order_id == close.order_id)
    with sqlite3.connect(db) as conn:
        ((fee,),) = conn.execute("SELECT fee FROM fills WHERE run_id=?", (second,)).fetchall()
    assert fee == pytest.approx(charged, abs=1e-9)
    # the first run's stop row stays open there; the next start counts the close stored
    # by the run that followed it and books nothing again
    again = await run_bot(settings(emulator, run_dirs, plan, duration="1s"), progress=False)
    assert again.status == "completed"
    assert [f[:3] for f in every_fill(db)] == [(first, "buy", 0.01), (second, "sell", 0.01)]
