"""A live session of the server (`serve --allow-live`) trades a real account like a CLI
canary run does: the account's halt stored in the server's database holds for it (it
places no order until resume-trading lifts it), and its own halts are stored there."""

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from perps_bot.risk.state import RiskState
from perps_bot.server import SessionManager, create_app
from perps_bot.storage import RunStore
from perps_bot.storage.durable import load_trading_states, save_trading_state
from perps_emulator import EmulatorServer
from tests.badinput.harness import run_main
from tests.live.live_helpers import API_KEY, API_SECRET
from tests.server.helpers import start

pytestmark = pytest.mark.integration

LIVE_SESSION = {
    "profile": "canary",
    "portfolios": [{"strategy": "tests.live.canary_strategy:FlipOnce",
                    "params": {"hold": 10_000}}],
    "duration": "60s",
}  # fmt: skip


def _halt_the_account(db: Path) -> None:
    """A halt of the account, as a canary run that hit its drawdown limit stores it."""
    why = "drawdown 12.0% >= max 10.0%"
    halted = RiskState("HALTED", why, drawdown_halt=why, peak=1_000.0, last_equity=880.0)
    with RunStore(db) as store, store.transaction():
        save_trading_state(store.connection, profile="canary", state="HALTED", detail=why,
                           risk=halted.to_json(), run_id="an-earlier-run",
                           source="run")  # fmt: skip


def _live_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keys and a fast poll for a live session on the emulator; logs in `tmp_path`."""
    for key, value in {"API_KEY": API_KEY, "API_SECRET": API_SECRET,
                       "POLL_INTERVAL": "100ms"}.items():  # fmt: skip
        monkeypatch.setenv(f"PERPS_BOT__EXCHANGE__{key}", value)
    monkeypatch.setenv("PERPS_BOT__RUN__LOG_DIR", str(tmp_path / "logs"))


async def test_a_live_session_keeps_the_accounts_halt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    db = tmp_path / "server.sqlite"
    _halt_the_account(db)
    _live_env(monkeypatch, tmp_path)
    async with EmulatorServer(symbols=("ETHUSDT",), seed=3, tick_interval_s=0.1) as exchange:
        monkeypatch.setenv("PERPS_BOT__EXCHANGE__BASE_URL", exchange.base_url)
        manager = SessionManager(db, allow_live=True)
        await manager.open()
        try:
            app = create_app(manager, token=None, hosts=frozenset())
            async with TestClient(TestServer(app, host="127.0.0.1")) as client:
                sid = await start(client, LIVE_SESSION)
                status = await _until_a_second_of_books(client, sid)
                await client.post(f"/api/sessions/{sid}/stop")
        finally:
            await manager.close()
        held = exchange.state.positions.get("ETHUSDT")
    assert status["risk_state"] == "HALTED", status
    assert held is None or held.amount == 0.0, "a halted account traded"
    with RunStore(db, read_only=True) as store:  # its own run stored the halt it kept:
        # a session of one portfolio is the whole account, kept as `main`
        saved = {s.portfolio: s.state for s in load_trading_states(store.connection)}
    assert saved == {"main": "HALTED"}


async def _until_a_second_of_books(client: TestClient[Any, Any], sid: str) -> dict[str, Any]:
    """The session's status once it has handled a second of the market (the strategy's
    entry comes with its first book; an entry sent then is open on the exchange)."""
    async with asyncio.timeout(60):
        while True:
            status: dict[str, Any] = await (await client.get(f"/api/sessions/{sid}")).json()
            assert status["status"] in ("starting", "running"), status
            started, now = status.get("started"), status.get("now")
            if started and now and _ms(now) - _ms(started) >= 1_000:
                return status
            await asyncio.sleep(0.1)


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


async def test_a_live_session_is_refused_while_the_profiles_own_database_is_halted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    """The halt a CLI canary run stored in the profile's own database protects the same
    account: the server refuses a live session of the profile (409, one line naming
    resume-trading) until `perps-bot resume-trading --profile canary` lifts it."""
    monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp_path / "data"))
    profile_db = tmp_path / "data" / "perps_bot.canary.sqlite"
    profile_db.parent.mkdir()
    _halt_the_account(profile_db)
    _live_env(monkeypatch, tmp_path)
    async with EmulatorServer(symbols=("ETHUSDT",), seed=3, tick_interval_s=0.1) as exchange:
        monkeypatch.setenv("PERPS_BOT__EXCHANGE__BASE_URL", exchange.base_url)
        manager = SessionManager(tmp_path / "server.sqlite", allow_live=True)
        await manager.open()
        try:
            app = create_app(manager, token=None, hosts=frozenset())
            async with TestClient(TestServer(app, host="127.0.0.1")) as client:
                refused = await client.post("/api/sessions", json=LIVE_SESSION)
                body = await refused.json()
                if refused.status == 201:  # the defect: it trades; stop it
                    await _until_a_second_of_books(client, body["session_id"])
                    await client.post(f"/api/sessions/{body['session_id']}/stop")
                assert refused.status == 409, body
                assert "HALTED" in body["error"] and "resume-trading" in body["error"], body
                assert "\n" not in body["error"]
                lifted = run_main(["resume-trading", "--profile", "canary", "--reason", "ok"])
                assert lifted.code == 0 and "HALTED -> ACTIVE" in lifted.out, lifted
                sid = await start(client, LIVE_SESSION)
                status = await _until_a_second_of_books(client, sid)
                await client.post(f"/api/sessions/{sid}/stop")
        finally:
            await manager.close()
    assert status["risk_state"] == "ACTIVE", status
