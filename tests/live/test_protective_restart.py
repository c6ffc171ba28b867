"""Protective orders that go missing on the exchange (SPEC 9, 16): a stop or take-profit
cancelled by someone else, during a run or while the bot is down, is placed again
once from the stored levels, and restarts never double them.

The bot runs in-process (run_bot) against the loopback emulator; "someone else" is the
emulator's control API (POST /_emulator/cancel_algo), so the bot learns of the cancel
only from the exchange."""

import asyncio
import signal
import sqlite3
from asyncio.subprocess import DEVNULL, PIPE
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from perps_bot.orchestrator.runner import run_bot
from perps_emulator import EmulatorServer
from tests.conftest import REPO
from tests.live.test_protective_bot import canary_process, plan_settings, resting, wait_for
from tests.plans.helpers import write_plan

pytestmark = pytest.mark.integration

ENTRY = {"id": "r1", "symbol": "ETH-PERP", "side": "long", "size": 0.01, "entry": "market",
         "stop": 2_950, "take_profit": 3_050}  # fmt: skip


def settings(emulator: EmulatorServer, run_dirs: dict[str, str], plan: Path, **run: str) -> Any:
    """The plan bot with a reconciliation every 300 ms and the given run options."""
    base = plan_settings(emulator, run_dirs, plan)
    exchange = base.exchange.model_copy(update={"reconcile_interval": "300ms"})
    return base.model_copy(update={"exchange": exchange, "run": base.run.model_copy(update=run)})


async def cancel_behind_the_bots_back(emulator: EmulatorServer, kind: str) -> str:
    """Cancel the waiting algo order of type `kind` through the control API; its id."""
    (order,) = [o for o in emulator.state.algo_orders.values() if o.is_open and o.type == kind]
    async with aiohttp.ClientSession() as http:
        url = f"{emulator.base_url}/_emulator/cancel_algo"
        async with http.post(url, json={"clientAlgoId": order.client_algo_id}) as answer:
            assert answer.status == 200, await answer.text()
    assert order.status == "CANCELED"
    return order.client_algo_id


def algo_statuses(emulator: EmulatorServer) -> list[tuple[str, str, float]]:
    """Every algo order the exchange ever had: (type, status, trigger), oldest first."""
    return [(o.type, o.status, o.trigger_price) for o in emulator.state.algo_orders.values()]


def stored_fills(db: Path) -> list[tuple[str, float, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT side, size, reason FROM fills ORDER BY ts, seq").fetchall()
    return [(str(side), float(size), str(reason)) for side, size, reason in rows]


async def protected_run(emulator: EmulatorServer, run_dirs: dict[str, str], plan: Path) -> Path:
    """A first run that enters, protects the position and stops (orders stay)."""
    first = await run_bot(settings(emulator, run_dirs, plan, duration="3s"), progress=False)
    assert first.status == "completed"
    assert resting(emulator) == {"STOP_MARKET": ("SELL", 2_950.0, True),
                                 "TAKE_PROFIT_MARKET": ("SELL", 3_050.0, True)}  # fmt: skip
    return Path(first.db_path)


async def test_a_stop_cancelled_during_the_run_is_placed_again_once(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.set_price("ETHUSDT", 3_000.0)
    plan = write_plan(tmp_path / "plan.csv", [ENTRY])
    bot = asyncio.create_task(
        run_bot(settings(emulator, run_dirs, plan, duration="5s"), progress=False)
    )
    await wait_for(lambda: len(resting(emulator)) == 2)
    await cancel_behind_the_bots_back(emulator, "STOP_MARKET")
    await wait_for(lambda: len(resting(emulator)) == 2)  # the next reconciliation
    result = await bot  # several more reconciliations: nothing more is placed
    assert result.status == "completed"
    assert algo_statuses(emulator) == [
        ("STOP_MARKET", "CANCELED", 2_950.0),
        ("TAKE_PROFIT_MARKET", "NEW", 3_050.0),
        ("STOP_MARKET", "NEW", 2_950.0),
    ]
    assert emulator.state.positions["ETHUSDT"].amount == pytest.approx(0.01)


async def test_a_restarted_bot_places_the_stop_deleted_while_it_was_down(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.set_price("ETHUSDT", 3_000.0)
    plan = write_plan(tmp_path / "plan.csv", [ENTRY])
    db = await protected_run(emulator, run_dirs, plan)
    await cancel_behind_the_bots_back(emulator, "STOP_MARKET")  # while the bot is down
    bot = asyncio.create_task(
        run_bot(settings(emulator, run_dirs, plan, duration="6s"), progress=False)
    )
    await wait_for(lambda: len(resting(emulator)) == 2, 30.0)  # the stop is back
    assert resting(emulator) == {"STOP_MARKET": ("SELL", 2_950.0, True),
                                 "TAKE_PROFIT_MARKET": ("SELL", 3_050.0, True)}  # fmt: skip
    emulator.set_price("ETHUSDT", 2_940.0)  # the re-placed stop closes the position
    await wait_for(lambda: not resting(emulator))  # and the take-profit is cancelled
    result = await bot
    assert result.status == "completed"
    assert algo_statuses(emulator) == [
        ("STOP_MARKET", "CANCELED", 2_950.0),
        ("TAKE_PROFIT_MARKET", "CANCELED", 3_050.0),
        ("STOP_MARKET", "FINISHED", 2_950.0),
    ]
    assert emulator.state.positions["ETHUSDT"].amount == 0.0
    assert [t.side for t in emulator.state.trades] == ["BUY", "SELL"]
    fills = stored_fills(db)  # every run's: the stop's fill is recorded once
    assert [f[:2] for f in fills] == [("buy", 0.01), ("sell", 0.01)]
    assert fills[-1][2] == "stop"
    with sqlite3.connect(db) as conn:  # the position is closed: its levels are gone
        assert conn.execute("SELECT COUNT(*) FROM protective_levels").fetchone() == (0,)


async def test_two_restarts_in_a_row_do_not_double_the_protective_orders(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.set_price("ETHUSDT", 3_000.0)
    plan = write_plan(tmp_path / "plan.csv", [ENTRY])
    db = await protected_run(emulator, run_dirs, plan)
    await cancel_behind_the_bots_back(emulator, "TAKE_PROFIT_MARKET")
    for _ in range(2):
        again = await run_bot(settings(emulator, run_dirs, plan, duration="2s"), progress=False)
        assert again.status == "completed"
        assert resting(emulator) == {"STOP_MARKET": ("SELL", 2_950.0, True),
                                     "TAKE_PROFIT_MARKET": ("SELL", 3_050.0, True)}  # fmt: skip
    assert algo_statuses(emulator) == [
        ("STOP_MARKET", "NEW", 2_950.0),
        ("TAKE_PROFIT_MARKET", "CANCELED", 3_050.0),
        ("TAKE_PROFIT_MARKET", "NEW", 3_050.0),
    ]
    assert [t.side for t in emulator.state.trades] == ["BUY"]
    assert [f[:2] for f in stored_fills(db)] == [("buy", 0.01)]


async def test_a_bot_killed_holding_a_protected_position_places_the_deleted_stop_again(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    emulator.set_price("ETHUSDT", 3_000.0)
    plan = write_plan(tmp_path / "plan.csv", [ENTRY])
    args, env, db = canary_process(emulator, tmp_path, plan, reconcile_interval="300ms")
    proc = await asyncio.create_subprocess_exec(*args, "--duration", "60s", cwd=REPO, env=env,
                                                stdout=DEVNULL, stderr=DEVNULL)  # fmt: skip
    await wait_for(lambda: len(resting(emulator)) == 2, 90.0)
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    await cancel_behind_the_bots_back(emulator, "STOP_MARKET")  # while the bot is down
    again = await asyncio.create_subprocess_exec(*args, "--duration", "8s", cwd=REPO, env=env,
                                                 stdout=DEVNULL, stderr=PIPE)  # fmt: skip
    await wait_for(lambda: len(resting(emulator)) == 2, 90.0)  # the stop is back
    emulator.set_price("ETHUSDT", 2_940.0)  # and closes the position
    _, err = await asyncio.wait_for(again.communicate(), 90)
    assert again.returncode == 0, err.decode()
    assert algo_statuses(emulator) == [
        ("STOP_MARKET", "CANCELED", 2_950.0),
        ("TAKE_PROFIT_MARKET", "CANCELED", 3_050.0),
        ("STOP_MARKET", "FINISHED", 2_950.0),
    ]
    assert [t.side for t in emulator.state.trades] == ["BUY", "SELL"]
    fills = stored_fills(db)
    assert [f[:2] for f in fills] == [("buy", 0.01), ("sell", 0.01)]
    assert fills[-1][2] == "stop"
