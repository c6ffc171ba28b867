"""A live bot's protective orders on the emulator (SPEC 16): a plan entry fills, its
stop and take-profit rest on the exchange as reduce-only trigger orders; when one
fills the other is cancelled (one-cancels-other) and the trade closes with its exit
reason; and a bot killed with a position is still stopped out by the exchange."""

import asyncio
import os
import signal
import sqlite3
import sys
from asyncio.subprocess import DEVNULL, PIPE
from pathlib import Path
from typing import Any

import pytest

from perps_bot.orchestrator.runner import run_bot
from perps_emulator import EmulatorServer
from tests.conftest import REPO
from tests.live.live_helpers import API_KEY, API_SECRET
from tests.live.test_crash_recovery import live_settings
from tests.plans.helpers import write_plan

pytestmark = pytest.mark.integration


def plan_settings(emulator: EmulatorServer, run_dirs: dict[str, str], plan: Path) -> Any:
    settings = live_settings(emulator, run_dirs, name="plan",
                             params={"file": str(plan), "reload_interval": 0})  # fmt: skip
    return settings.model_copy(update={"run": settings.run.model_copy(update={"duration": "4s"})})


async def wait_for(check: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out waiting for the emulator")


def resting(emulator: EmulatorServer) -> dict[str, tuple[str, float, bool]]:
    return {o.type: (o.side, o.trigger_price, o.reduce_only)
            for o in emulator.state.algo_orders.values() if o.is_open}  # fmt: skip


async def test_take_profit_fills_and_the_stop_is_cancelled(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.set_price("ETHUSDT", 3_000.0)
    plan = write_plan(tmp_path / "plan.csv", [
        {"id": "r1", "symbol": "ETH-PERP", "side": "long", "size": 0.01, "entry": "market",
         "stop": 2_950, "take_profit": 3_050}])  # fmt: skip
    bot = asyncio.create_task(run_bot(plan_settings(emulator, run_dirs, plan), progress=False))
    await wait_for(lambda: len(resting(emulator)) == 2)
    # (a) the entry filled; both protective orders rest on the exchange, reduce-only
    assert emulator.state.positions["ETHUSDT"].amount == pytest.approx(0.01)
    assert resting(emulator) == {"STOP_MARKET": ("SELL", 2_950.0, True),
                                 "TAKE_PROFIT_MARKET": ("SELL", 3_050.0, True)}  # fmt: skip
    emulator.set_price("ETHUSDT", 3_060.0)
    await wait_for(lambda: not resting(emulator))  # (c) the bot cancelled the stop
    result = await bot
    assert result.status == "completed"
    statuses = {o.type: o.status for o in emulator.state.algo_orders.values()}
    assert statuses == {"STOP_MARKET": "CANCELED", "TAKE_PROFIT_MARKET": "FINISHED"}
    assert emulator.state.positions["ETHUSDT"].amount == 0.0
    with sqlite3.connect(result.db_path) as conn:
        fills = conn.execute("SELECT side, size, reason FROM fills WHERE run_id=? ORDER BY seq",
                             (result.run_id,)).fetchall()  # fmt: skip
    assert [(side, size) for side, size, _ in fills] == [("buy", 0.01), ("sell", 0.01)]
    assert fills[-1][2] == "take_profit"


def canary_process(
    emulator: EmulatorServer, tmp_path: Path, plan: Path, **exchange: str
) -> tuple[list[str], dict[str, str], Path]:
    """The command line, environment and database of a canary bot process trading
    `plan` on the emulator (`exchange`: more PERPS_BOT__EXCHANGE__ settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPS_BOT__")} | {
        "PERPS_BOT__EXCHANGE__BASE_URL": emulator.base_url,
        "PERPS_BOT__EXCHANGE__API_KEY": API_KEY,
        "PERPS_BOT__EXCHANGE__API_SECRET": API_SECRET,
        "PERPS_BOT__EXCHANGE__POLL_INTERVAL": "100ms",
        "PERPS_BOT__RUN__LOG_DIR": str(tmp_path / "logs"),
    }
    env |= {f"PERPS_BOT__EXCHANGE__{key.upper()}": value for key, value in exchange.items()}
    db = tmp_path / "canary.sqlite"
    args = [sys.executable, "-m", "perps_bot", "--profile", "canary", "--db", str(db),
            "--strategy", "plan", "--param", f"file={plan}"]  # fmt: skip
    return args, env, db


async def test_a_killed_bot_is_stopped_out_by_the_exchange_and_reconciles_once(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    emulator.set_price("ETHUSDT", 3_000.0)
    plan = write_plan(tmp_path / "plan.csv", [
        {"id": "r1", "symbol": "ETH-PERP", "side": "long", "size": 0.01, "entry": "market",
         "stop": 2_950, "take_profit": 3_050}])  # fmt: skip
    args, env, db = canary_process(emulator, tmp_path, plan)
    proc = await asyncio.create_subprocess_exec(*args, "--duration", "60s", cwd=REPO, env=env,
                                                stdout=DEVNULL, stderr=DEVNULL)  # fmt: skip
    await wait_for(lambda: len(resting(emulator)) == 2, 30.0)
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    emulator.set_price("ETHUSDT", 2_940.0)  # while the bot is down: the stop fills
    assert emulator.state.positions["ETHUSDT"].amount == 0.0
    assert len(resting(emulator)) == 1  # the take-profit is left behind
    again = await asyncio.create_subprocess_exec(*args, "--duration", "3s", cwd=REPO, env=env,
                                                 stdout=DEVNULL, stderr=PIPE)  # fmt: skip
    _, err = await asyncio.wait_for(again.communicate(), 90)
    assert again.returncode == 0, err.decode()
    statuses = {o.type: o.status for o in emulator.state.algo_orders.values()}
    assert statuses == {"STOP_MARKET": "FINISHED", "TAKE_PROFIT_MARKET": "CANCELED"}
    assert [t.side for t in emulator.state.trades] == ["BUY", "SELL"]  # nothing doubled
    with sqlite3.connect(db) as conn:
        fills = conn.execute("SELECT side, size, reason FROM fills ORDER BY ts, seq").fetchall()
    assert [(side, size) for side, size, _ in fills] == [("buy", 0.01), ("sell", 0.01)]
    assert fills[-1][2] == "stop"


async def test_two_entries_filled_in_one_batch_are_protected_once(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer, tmp_path: Path
) -> None:
    """Two plan rows enter ETH at once: one stop and one take-profit for the whole 0.014
    are sent, nothing more. Before, each entry's fill decided its protective orders
    before the first ones were sent: a stop and a take-profit for 0.007 rested next to
    those for 0.014 (until a reconciliation cancelled them)."""
    emulator.set_price("ETHUSDT", 3_000.0)
    plan = write_plan(tmp_path / "plan.csv", [
        {"id": f"r{n}", "symbol": "ETH-PERP", "side": "long", "size": 0.007, "entry": "market",
         "stop": 2_950, "take_profit": 3_050} for n in (1, 2)])  # fmt: skip
    settings = plan_settings(emulator, run_dirs, plan)
    run = settings.run.model_copy(update={"duration": "2s"})
    result = await run_bot(settings.model_copy(update={"run": run}), progress=False)
    assert result.status == "completed"
    assert emulator.state.positions["ETHUSDT"].amount == pytest.approx(0.014)
    sent = [(o.type, o.status, o.quantity) for o in emulator.state.algo_orders.values()]
    assert sent == [("STOP_MARKET", "NEW", 0.014), ("TAKE_PROFIT_MARKET", "NEW", 0.014)]
