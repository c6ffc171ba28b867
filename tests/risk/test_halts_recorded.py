"""Every halt is a state change like the drawdown's: journaled (what the alerts and the
metrics follow) and stored at once, so that a crash right after it does not forget it
(SPEC 9: only resume-trading lifts a halt)."""

from pathlib import Path
from typing import Any

from perps_bot.config import load_settings
from perps_bot.domain import TradingState
from perps_bot.storage.durable import load_trading_state
from perps_bot.venues import VenuePosition, VenueSnapshot
from tests.harness.venue import ScriptedVenue
from tests.harness.wired import wired

ETH = "ETH-PERP"


def scripted(pid: str) -> dict[str, Any]:
    return {"id": pid, "strategy": "tests.harness.scripted:ScriptedTargets", "symbols": [ETH],
            "params": {"symbol": ETH, "script": ""}}  # fmt: skip


async def test_a_reconciliation_halt_is_journaled_and_stored_at_once(tmp_path: Path) -> None:
    run_section = {"dev_fast": True, "symbols": [ETH], "log_dir": str(tmp_path / "logs"),
                   "data_dir": str(tmp_path / "data"), "live_view": False}  # fmt: skip
    cfg = load_settings(
        "dev", {"run": run_section, "portfolios": [scripted("eth-1"), scripted("eth-2")]}
    )
    venue = ScriptedVenue([])
    venue.snapshots = [VenueSnapshot(10_000.0, [VenuePosition(ETH, 2.0, 10.0)])]
    seen: list[tuple[str, dict[str, Any]]] = []
    async with wired(cfg, venue) as run:
        run.journal.subscribe(lambda kind, line: seen.append((kind, line)))
        engine = run.orchestrator
        await engine.reconcile("start")
        assert engine.trading_state is TradingState.HALTED
        changes = [line for kind, line in seen if kind == "state_change"]
        assert sorted(line["portfolio"] for line in changes) == ["eth-1", "eth-2"]
        assert all(line["state"] == "HALTED" for line in changes)
        assert all("cannot be attributed" in line["detail"] for line in changes)
        for pid in ("eth-1", "eth-2"):  # stored before the run goes on (kill -9 keeps it)
            stored = load_trading_state(run.store.connection, pid)
            assert stored is not None and stored.state == "HALTED", pid
