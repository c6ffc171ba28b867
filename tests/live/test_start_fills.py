"""Fills made while a live bot starts (SPEC 9: no acknowledged fill lost or counted twice).

An order an earlier run left resting (a stop) is found open by the venue's start and
followed from then on; recovery then looks up every order of the earlier runs whose row
is not final and books into that run what the exchange executed beyond what it stored.
The stop's trigger is made to happen at a chosen request of the start (the emulator's
route answers it after moving the price)."""

import dataclasses
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
