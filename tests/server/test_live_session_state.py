"""A live session of the server (`serve --allow-live`) trades a real account like a CLI
canary run does: the account's halt stored in the profile's database refuses it until
resume-trading lifts it, and its own halts are stored there, for the CLI runs after it."""

from pathlib import Path
from typing import Any

import pytest

from perps_bot.risk.state import RiskState
from perps_bot.storage import RunStore
from perps_bot.storage.durable import load_trading_states, save_trading_state
from tests.badinput.harness import run_main
from tests.server.helpers import cli_bot, start
from tests.server.live_sessions import (
    LIVE_SESSION,
    a_second_of_books,
    emulated,
    ended,
    live_env,
    live_server,
    until,
)

pytestmark = pytest.mark.integration


def _halt_the_account(db: Path) -> None:
    """A halt of the account, as a canary run that hit its drawdown limit stores it."""
    why = "drawdown 12.0% >= max 10.0%"
    halted = RiskState("HALTED", why, drawdown_halt=why, peak=1_000.0, last_equity=880.0)
    db.parent.mkdir(parents=True, exist_ok=True)
    with RunStore(db) as store, store.transaction():
        save_trading_state(store.connection, profile="canary", state="HALTED", detail=why,
                           risk=halted.to_json(), run_id="an-earlier-run",
                           source="run")  # fmt: skip


@pytest.mark.pure_python  # a live session: live runs are plain Python (perps_bot.compiled)
async def test_a_live_sessions_halt_holds_for_the_profiles_cli_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    """A live session that halts stores the halt in the profile's own database, where a
    later CLI canary run of the account takes it (it starts HALTED and places nothing).
    The halt: an ETH position on the account that neither of the session's two ETH
    portfolios placed (reconciliation cannot attribute it, so both stop trading)."""
    profile_db = live_env(monkeypatch, tmp_path)
    monkeypatch.setenv("PERPS_BOT__ACCOUNT__MARGIN_MODE", "cross")  # the position's own
    two = [{"id": pid, "strategy": "tests.live.canary_strategy:FlipOnce"} for pid in "ab"]
    async with emulated(monkeypatch, eth_held=0.01) as exchange:
        async with live_server(tmp_path) as client:
            sid = await start(client, LIVE_SESSION | {"portfolios": two})
            await until(client, sid, _both_halted)
            await client.post(f"/api/sessions/{sid}/stop")
            await until(client, sid, ended)
        code, out = await cli_bot("--profile", "canary", "--duration", "1s")
        held = exchange.state.positions["ETHUSDT"].amount
    with RunStore(profile_db, read_only=True) as store:
        saved = {s.portfolio: s.state for s in load_trading_states(store.connection)}
    assert saved["a"] == saved["b"] == "HALTED", saved  # the session's, in the profile's
    assert code == 0 and "RISK STATE HALTED" in out, out  # the CLI run took the halt
    assert held == 0.01, "a halted account traded"


def _both_halted(status: dict[str, Any]) -> bool:
    assert not ended(status), status
    return [p["risk_state"] for p in status.get("portfolios", [])] == ["HALTED", "HALTED"]


async def test_a_live_session_is_refused_while_the_profiles_own_database_is_halted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    """The halt a CLI canary run stored in the profile's own database protects the same
    account: the server refuses a live session of the profile (409, one line naming
    resume-trading) until `perps-bot resume-trading --profile canary` lifts it."""
    _halt_the_account(live_env(monkeypatch, tmp_path))
    async with emulated(monkeypatch), live_server(tmp_path) as client:
        refused = await client.post("/api/sessions", json=LIVE_SESSION)
        body = await refused.json()
        if refused.status == 201:  # the defect: it trades; stop it
            await until(client, body["session_id"], a_second_of_books)
            await client.post(f"/api/sessions/{body['session_id']}/stop")
        assert refused.status == 409, body
        assert "HALTED" in body["error"] and "resume-trading" in body["error"], body
        assert "\n" not in body["error"]
        lifted = run_main(["resume-trading", "--profile", "canary", "--reason", "ok"])
        assert lifted.code == 0 and "HALTED -> ACTIVE" in lifted.out, lifted
        sid = await start(client, LIVE_SESSION)
        status = await until(client, sid, a_second_of_books)
        await client.post(f"/api/sessions/{sid}/stop")
    assert status["risk_state"] == "ACTIVE", status


async def test_a_failed_live_session_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    """A live session whose run fails shows the run's one-line reason (here the exchange
    refuses the canary's isolated margin on a symbol with an open position), not a bare
    `failed`."""
    live_env(monkeypatch, tmp_path)
    async with emulated(monkeypatch, eth_held=0.01), live_server(tmp_path) as client:
        sid = await start(client, LIVE_SESSION)
        status = await until(client, sid, ended)
    assert status["status"] == "failed", status
    assert "isolated margin" in (status["detail"] or ""), status
