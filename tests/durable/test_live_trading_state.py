"""Issue 11 on a live account (the canary profile against the loopback emulator): a
stored halt survives a restart, and the stored equity peak is compared with the
balance the ledger adopts from the exchange at start, not with the profile's."""

from pathlib import Path

import pytest

from perps_bot.risk import RiskState
from perps_bot.storage import RunStore
from perps_bot.storage import durable as stored
from perps_emulator import EmulatorServer
from tests.durable.helpers import query
from tests.live.test_canary_bot import run_canary

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
