"""A live session of the server (`serve --allow-live`) trades a real account like a CLI
canary run does: the account's halt stored in the profile's database refuses it until
resume-trading lifts it, and its own halts are stored there, for the CLI runs after it."""

import asyncio
from collections.abc import Callable
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
from tests.server.helpers import cli_bot, start

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


async def test_a_live_sessions_halt_holds_for_the_profiles_cli_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    """A live session that halts stores the halt in the profile's own database, where a
    later CLI canary run of the account takes it (it starts HALTED and places nothing).
    The halt: an ETH position on the account that neither of the session's two ETH
    portfolios placed (reconciliation cannot attribute it, so both stop trading)."""
    monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PERPS_BOT__ACCOUNT__MARGIN_MODE", "cross")  # the position's own
    _live_env(monkeypatch, tmp_path)
    two = [{"id": pid, "strategy": "tests.live.canary_strategy:FlipOnce"} for pid in "ab"]
    async with EmulatorServer(symbols=("ETHUSDT",), seed=3, tick_interval_s=0.1) as exchange:
        monkeypatch.setenv("PERPS_BOT__EXCHANGE__BASE_URL", exchange.base_url)
        exchange.engine.place_order({"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET",
                                     "quantity": "0.01"})  # fmt: skip
        manager = SessionManager(tmp_path / "server.sqlite", allow_live=True)
        await manager.open()
        try:
            app = create_app(manager, token=None, hosts=frozenset())
            async with TestClient(TestServer(app, host="127.0.0.1")) as client:
                sid = await start(client, LIVE_SESSION | {"portfolios": two})
                await _until(client, sid, _both_halted)
                await client.post(f"/api/sessions/{sid}/stop")
                await _until(client, sid, lambda s: s["status"] not in ("starting", "running"))
        finally:
            await manager.close()
        code, out = await cli_bot("--profile", "canary", "--duration", "1s")
        held = exchange.state.positions["ETHUSDT"].amount
    with RunStore(tmp_path / "data" / "perps_bot.canary.sqlite", read_only=True) as store:
        saved = {s.portfolio: s.state for s in load_trading_states(store.connection)}
    assert saved["a"] == saved["b"] == "HALTED", saved  # the session's, in the profile's
    assert code == 0 and "RISK STATE HALTED" in out, out  # the CLI run took the halt
    assert held == 0.01, "a halted account traded"


def _both_halted(status: dict[str, Any]) -> bool:
    assert status["status"] in ("starting", "running"), status
    states = [p["risk_state"] for p in status.get("portfolios", [])]
    return states == ["HALTED", "HALTED"]


async def _until(
    client: TestClient[Any, Any], sid: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The session's status once `done(status)` holds."""
    async with asyncio.timeout(60):
        while True:
            status: dict[str, Any] = await (await client.get(f"/api/sessions/{sid}")).json()
            if done(status):
                return status
            await asyncio.sleep(0.05)


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


async def test_a_failed_live_session_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    """A live session whose run fails shows the run's one-line reason (here the exchange
    refuses the canary's isolated margin on a symbol with an open position), not a bare
    `failed`."""
    monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp_path / "data"))
    _live_env(monkeypatch, tmp_path)
    async with EmulatorServer(symbols=("ETHUSDT",), seed=3, tick_interval_s=0.1) as exchange:
        monkeypatch.setenv("PERPS_BOT__EXCHANGE__BASE_URL", exchange.base_url)
        exchange.engine.place_order({"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET",
                                     "quantity": "0.01"})  # fmt: skip
        manager = SessionManager(tmp_path / "server.sqlite", allow_live=True)
        await manager.open()
        try:
            app = create_app(manager, token=None, hosts=frozenset())
            async with TestClient(TestServer(app, host="127.0.0.1")) as client:
                sid = await start(client, LIVE_SESSION)
                status = await _until(
                    client, sid, lambda s: s["status"] not in ("starting", "running")
                )
        finally:
            await manager.close()
    assert status["status"] == "failed", status
    assert "isolated margin" in (status["detail"] or ""), status
