"""A live position above the exchange's largest market order (BTCUSDT: MARKET_LOT_SIZE
120) on the emulator, which refuses a market order or a stop above it (-4005), as
Binance does. A flatten of 300 BTC was one sell of 300: refused, the position stayed;
its stop and take-profit of 300 were refused, the position unprotected. Both now go out
as several orders within the maximum, each exactly once (SPEC 9)."""

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from perps_bot.orchestrator.runner import Run, RunResult, run_bot
from perps_emulator import EmulatorServer, Fault
from tests.harness.limits import LOOSE_RISK
from tests.harness.polling import until
from tests.live.test_crash_recovery import live_settings
from tests.plans.helpers import write_plan

pytestmark = pytest.mark.integration

BTC, BTCUSDT = "BTC-PERP", "BTCUSDT"


@contextlib.asynccontextmanager
async def big_exchange() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(symbols=(BTCUSDT,), seed=3, initial_balance=1e9) as exchange:
        exchange.set_price(BTCUSDT, 60_000.0)
        yield exchange


def plan_run(exchange: EmulatorServer, run_dirs: dict[str, str], plan: Path) -> Any:
    """A canary bot trading `plan` on BTC-PERP, its caps out of the way of 300 BTC."""
    settings = live_settings(exchange, run_dirs, name="plan",
                             params={"file": str(plan), "reload_interval": 0})  # fmt: skip
    return settings.model_copy(update={
        "run": settings.run.model_copy(update={"duration": "60s", "symbols": [BTC]}),
        "risk": settings.risk.model_copy(update=LOOSE_RISK),
        "account": settings.account.model_copy(update={"default_leverage": 10.0}),
        "exchange": settings.exchange.model_copy(update={"timeout_ms": 500}),
    })  # fmt: skip


def three_entries(tmp_path: Path, **protection: float) -> Path:
    """300 BTC from three market entries of 100 (each within the maximum)."""
    return write_plan(tmp_path / "plan.csv", [
        {"id": f"r{n}", "symbol": BTC, "side": "long", "size": 100, "entry": "market",
         **protection} for n in (1, 2, 3)])  # fmt: skip


async def run_while(settings: Any, act: Callable[[Run], Any]) -> RunResult:
    """Run the bot; `act(run)` (a coroutine) runs beside it, and the run stops once it
    returned."""

    @contextlib.asynccontextmanager
    async def beside(run: Run) -> AsyncIterator[None]:
        async def go() -> None:
            await act(run)
            run.orchestrator.request_stop("duration reached")

        task = asyncio.create_task(go())
        try:
            yield
        finally:
            task.cancel()

    return await run_bot(settings, progress=False, attach=beside)


def stored(result: RunResult, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(result.db_path) as conn:
        return conn.execute(sql, (result.run_id,)).fetchall()


async def test_a_live_flatten_above_the_maximum_ends_flat_with_no_doubled_order(
    in_repo: Path, run_dirs: dict[str, str], tmp_path: Path
) -> None:
    """The second of the three closing orders is executed but its answer is lost: it is
    looked up by its client id and found, never sent again; the account ends flat."""
    async with big_exchange() as exchange:
        settings = plan_run(exchange, run_dirs, three_entries(tmp_path))

        async def flatten(run: Run) -> None:
            orchestrator = run.orchestrator
            await until(lambda: orchestrator.ledger.position_size(BTC) == 300.0)
            exchange.inject(Fault("accept_then_timeout", after=1, delay_s=1.0))
            assert orchestrator.flatten(orchestrator.primary, "flatten (test)") == 1
            await until(lambda: exchange.state.positions[BTCUSDT].amount == 0.0
                        and orchestrator.ledger.position_size(BTC) == 0.0)  # fmt: skip

        result = await run_while(settings, flatten)
        sells = [o for o in exchange.state.orders.values() if o.side == "SELL"]
        unfaulted = exchange.faults.pending
    assert result.status == "completed" and unfaulted == [], "the answer was never lost"
    assert [(o.orig_qty, o.reduce_only, o.status) for o in sells] == [
        (100.0, True, "FILLED")] * 3  # fmt: skip
    assert len({o.client_order_id for o in sells}) == 3, "an order was sent twice"
    orders = stored(result, "SELECT client_id, size, reduce_only, status FROM orders"
                            " WHERE run_id=? AND side='sell' ORDER BY rowid")  # fmt: skip
    assert [(cid, size, ro, st) for cid, size, ro, st in orders] == [
        (o.client_order_id, 100.0, 1, "filled") for o in sells]  # fmt: skip
    with (Path(run_dirs["log_dir"]) / "events.jsonl").open() as fh:
        unknown = [line for line in fh if '"status":"unknown"' in line]
    assert len(unknown) == 1 and sells[1].client_order_id in unknown[0], unknown
    fills = stored(result, "SELECT side, size, position_after FROM fills WHERE run_id=?"
                           " ORDER BY seq")  # fmt: skip
    assert fills[-3:] == [("sell", 100.0, 200.0), ("sell", 100.0, 100.0), ("sell", 100.0, 0.0)]


async def test_a_live_stop_above_the_maximum_protects_the_whole_position(
    in_repo: Path, run_dirs: dict[str, str], tmp_path: Path
) -> None:
    """The stop and take-profit of 300 BTC rest as three reduce-only orders of 100 each
    (the exchange refuses one of 300); the price falls through the stop: all three fill,
    the take-profits are cancelled, the account is flat."""
    async with big_exchange() as exchange:
        plan = three_entries(tmp_path, stop=59_000, take_profit=62_000)
        settings = plan_run(exchange, run_dirs, plan)
        states: list[str] = []

        def resting() -> list[tuple[str, float]]:
            return sorted((o.type, o.quantity) for o in exchange.state.algo_orders.values()
                          if o.is_open)  # fmt: skip

        async def stop_out(run: Run) -> None:
            await until(lambda: resting() == [("STOP_MARKET", 100.0)] * 3
                        + [("TAKE_PROFIT_MARKET", 100.0)] * 3)  # fmt: skip
            states.append(str(run.orchestrator.trading_state))
            exchange.set_price(BTCUSDT, 58_900.0)
            await until(lambda: not resting()
                        and run.orchestrator.ledger.position_size(BTC) == 0.0)  # fmt: skip

        result = await run_while(settings, stop_out)
        position = exchange.state.positions[BTCUSDT].amount
    assert result.status == "completed" and position == 0.0
    fills = stored(result, "SELECT side, size, reason FROM fills WHERE run_id=? ORDER BY seq")
    assert fills[-3:] == [("sell", 100.0, "stop")] * 3, fills
    assert states == ["ACTIVE"], "a protective order was refused: the bot halted"


async def test_a_live_entry_whose_protection_the_exchange_would_refuse_is_not_sent(
    in_repo: Path, run_dirs: dict[str, str], tmp_path: Path
) -> None:
    """The exchange keeps at most 10 open stops and take-profits per symbol (exchangeInfo
    MAX_NUM_ALGO_ORDERS; -4045 beyond). Seven entries of 100 BTC, each with a stop and a
    take-profit: at 700 BTC the protection is 6 + 6 orders, the exchange refused the
    eleventh and the bot halted with the position protected in part. The seventh entry
    is refused before it exists now (the limit read from the exchange's market); 600 BTC
    rest protected by 5 + 5 orders and the bot stays ACTIVE."""
    async with big_exchange() as exchange:
        plan = write_plan(tmp_path / "plan.csv", [
            {"id": f"r{n}", "symbol": BTC, "side": "long", "size": 100, "entry": "market",
             "stop": 59_000, "take_profit": 62_000} for n in range(1, 8)])  # fmt: skip
        settings = plan_run(exchange, run_dirs, plan)
        states: list[str] = []

        def resting() -> list[tuple[str, float]]:
            return sorted((o.type, o.quantity) for o in exchange.state.algo_orders.values()
                          if o.is_open)  # fmt: skip

        async def settle(run: Run) -> None:
            await until(lambda: resting() == [("STOP_MARKET", 120.0)] * 5
                        + [("TAKE_PROFIT_MARKET", 120.0)] * 5)  # fmt: skip
            await until(lambda: bool(stored_denials(run)))
            states.append(str(run.orchestrator.trading_state))

        result = await run_while(settings, settle)
        position = exchange.state.positions[BTCUSDT].amount
    assert result.status == "completed" and position == 600.0
    assert states == ["ACTIVE"]
    denied = stored(result, "SELECT reason_code, detail FROM denials WHERE run_id=?")
    assert [code for code, _ in denied] == ["ABOVE_MAX_QUANTITY"], denied
    assert "at most 10 open stop and take-profit orders" in denied[0][1]


def stored_denials(run: Run) -> list[str]:
    return [str(k) for k, n in run.orchestrator.primary.rec.denials.items() if n]


async def test_a_live_flip_sends_its_entry_once_the_split_close_has_filled(
    in_repo: Path, run_dirs: dict[str, str]
) -> None:
    """Long 250, target short 50 on the emulator: the close goes out as three reduce-only
    orders and the short entry, held back until they are done, goes out after them (the
    venue's replies carry their fills: no event needed to release it). The account ends
    short 50, each order sent once."""
    async with big_exchange() as exchange:
        settings = plan_run(exchange, run_dirs, Path("unused.csv"))
        strategy = {"name": "tests.harness.scripted:ScriptedTargets",
                    "params": {"symbol": BTC, "script": "2:100,4:200,6:250,10:-50"}}  # fmt: skip
        settings = settings.model_copy(update={"strategy": settings.strategy.model_copy(
            update=strategy)})  # fmt: skip

        async def flip(run: Run) -> None:
            await until(lambda: exchange.state.positions[BTCUSDT].amount == -50.0
                        and run.orchestrator.ledger.position_size(BTC) == -50.0)  # fmt: skip

        result = await run_while(settings, flip)
        sells = [o for o in exchange.state.orders.values() if o.side == "SELL"]
    assert result.status == "completed"
    assert [(o.orig_qty, o.reduce_only, o.status) for o in sells] == [
        (83.334, True, "FILLED"), (83.333, True, "FILLED"), (83.333, True, "FILLED"),
        (50.0, False, "FILLED")]  # fmt: skip
    assert sells[3].time >= max(o.update_time for o in sells[:3])
