"""Issue 11 on a live account (the canary profile against the loopback emulator): a
stored halt survives a restart, and the stored equity peak is compared with the
balance the ledger adopts from the exchange at start, not with the profile's; a new
peak (or day's start) is stored while the run goes on, not only at its end."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from perps_bot.config import load_settings
from perps_bot.orchestrator.runner import Run, run_bot
from perps_bot.risk import RiskState
from perps_bot.storage import RunStore
from perps_bot.storage import durable as stored
from perps_emulator import EmulatorServer
from tests.durable.helpers import query
from tests.harness.polling import until
from tests.live.live_helpers import API_KEY, API_SECRET
from tests.live.test_canary_bot import STRATEGY, run_canary

pytestmark = pytest.mark.integration


def _store(run_dirs: dict[str, str], state: RiskState) -> Path:
    db = Path(run_dirs["data_dir"]) / "perps_bot.canary.sqlite"
    with RunStore(db) as store, store.transaction():
        stored.save_trading_state(
            store.connection, profile="canary", state=state.state, detail=state.detail,
            risk=state.to_json(), run_id="earlier", source="run",
        )  # fmt: skip
    return db


def _denials(db: Path, run_id: str) -> set[str]:
    rows = query(db, "SELECT DISTINCT reason_code FROM denials WHERE run_id=?", (run_id,))
    return {str(r[0]) for r in rows}


async def test_a_stored_halt_keeps_a_live_restart_from_trading(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    db = _store(run_dirs, RiskState("HALTED", "drawdown 12%", drawdown_halt="drawdown 12%"))
    result = await run_canary(emulator, run_dirs, dry_run=False)
    assert result.fills == 0 and emulator.state.orders == {}
    assert _denials(db, result.run_id) == {"MAX_DRAWDOWN_HALT"}


async def test_the_stored_peak_is_measured_against_the_adopted_exchange_balance(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    balance = float(emulator.state.balances["USDT"])
    # the account was worth twice its balance at its peak: the drawdown halts at once
    db = _store(run_dirs, RiskState("ACTIVE", "", peak=2 * balance, last_equity=2 * balance))
    # long enough for the first equity to reach the gate on a loaded machine
    result = await run_canary(emulator, run_dirs, dry_run=False, duration="5s")
    assert result.fills == 0 and emulator.state.orders == {}
    assert query(db, "SELECT state FROM trading_state") == [("HALTED",)]


async def test_a_peak_below_the_adopted_balance_is_just_overtaken(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    balance = float(emulator.state.balances["USDT"])
    _store(run_dirs, RiskState("ACTIVE", "", peak=balance / 2, last_equity=balance / 2))
    result = await run_canary(emulator, run_dirs, dry_run=False)
    assert result.fills == 2, "a deposit since the peak is no drawdown"


async def test_a_new_peak_is_stored_while_the_live_run_goes_on(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """The peak (and the day's starting equity) moved in the gate and were stored only at
    a state change or at the run's end: a live bot killed with SIGKILL came back with
    the peak of before, so the drawdown since the real peak went unmeasured (and the
    day's loss before the kill was forgotten once the stored day was an older one).
    They are stored with the run's periodic flush now: what a kill leaves has them."""
    balance = float(emulator.state.balances["USDT"])
    db = _store(run_dirs, RiskState("ACTIVE", "", peak=balance / 2, last_equity=balance / 2))
    settings = load_settings("canary", {
        "run": {"duration": "20s", "live_view": False, **run_dirs},
        "exchange": {"base_url": emulator.base_url, "poll_interval": "100ms",
                     "api_key": API_KEY, "api_secret": API_SECRET},
        "strategy": {"name": STRATEGY, "params": {"hold": 10_000}},
    })  # fmt: skip
    seen: list[dict[str, object]] = []

    def stored_risk() -> dict[str, object]:
        rows = query(db, "SELECT risk FROM trading_state")
        return dict(json.loads(rows[0][0])) if rows else {}

    @contextlib.asynccontextmanager
    async def beside(run: Run) -> AsyncIterator[None]:
        async def watch() -> None:
            gate = run.orchestrator.primary.risk
            await until(lambda: gate.export_state().peak == balance, timeout=30)
            await until(lambda: stored_risk().get("peak") == balance, timeout=10)
            seen.append(stored_risk())  # while running: what a kill now would leave
            run.orchestrator.request_stop("seen")

        task = asyncio.create_task(watch())
        try:
            yield
        finally:
            task.cancel()

    result = await run_bot(settings, progress=False, attach=beside)
    assert result.status == "completed" and seen, "the new peak was not stored in time"
    assert seen[0]["peak"] == balance and seen[0]["day_start_equity"] == balance
