"""A live session of the server trades the profile's account, so it keeps that account's
state where CLI runs of the profile keep it, in the profile's own database: one bot
trades the account at a time (its lock), and what outlives a run (the halt, executed
plan rows, stops, the orders it placed) is seen by the CLI runs that come after it."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from perps_bot.server import SessionManager, create_app
from perps_bot.storage import RunStore
from perps_bot.storage.durable import load_trading_states
from perps_bot.storage.lock import DatabaseLock
from perps_emulator import EmulatorServer
from tests.server.helpers import cli_bot, start
from tests.server.test_live_session_state import LIVE_SESSION, _live_env, _until_a_second_of_books

pytestmark = pytest.mark.integration


@asynccontextmanager
async def _live_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[TestClient[Any, Any], Path]]:
    """A server allowed to trade live against the emulator; yields the client and the
    canary profile's own database (the server keeps its sessions in another)."""
    monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp_path / "data"))
    _live_env(monkeypatch, tmp_path)
    async with EmulatorServer(symbols=("ETHUSDT",), seed=3, tick_interval_s=0.1) as exchange:
        monkeypatch.setenv("PERPS_BOT__EXCHANGE__BASE_URL", exchange.base_url)
        manager = SessionManager(tmp_path / "server.sqlite", allow_live=True)
        await manager.open()
        try:
            app = create_app(manager, token=None, hosts=frozenset())
            async with TestClient(TestServer(app, host="127.0.0.1")) as client:
                yield client, tmp_path / "data" / "perps_bot.canary.sqlite"
        finally:
            await manager.close()


async def test_a_cli_bot_is_refused_while_a_live_session_trades_the_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    async with _live_server(tmp_path, monkeypatch) as (client, _):
        sid = await start(client, LIVE_SESSION)
        await _until_a_second_of_books(client, sid)
        code, out = await cli_bot("--profile", "canary", "--duration", "2s")
        await client.post(f"/api/sessions/{sid}/stop")
    assert code == 2, out
    assert "in use by another bot" in out and "Traceback" not in out, out


async def test_a_live_session_is_refused_while_a_cli_bot_trades_the_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    async with _live_server(tmp_path, monkeypatch) as (client, profile_db):
        with DatabaseLock(profile_db):  # what a CLI bot of the profile holds while it runs
            refused = await client.post("/api/sessions", json=LIVE_SESSION)
            body = await refused.json()
            if refused.status == 201:  # the defect: two bots trade the account; stop it
                await _until_a_second_of_books(client, body["session_id"])
                await client.post(f"/api/sessions/{body['session_id']}/stop")
        assert refused.status == 409, body
        assert "canary" in body["error"] and "\n" not in body["error"], body
        sid = await start(client, LIVE_SESSION)  # once the CLI bot is gone, it starts
        await _until_a_second_of_books(client, sid)
        await client.post(f"/api/sessions/{sid}/stop")


async def test_a_live_sessions_run_and_state_are_the_profiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    """The session's run, its orders and its trading state are in the profile's own
    database (where `report`, `resume-trading` and the next CLI run read them); the
    server still shows the session's rows once it has ended."""
    async with _live_server(tmp_path, monkeypatch) as (client, profile_db):
        sid = await start(client, LIVE_SESSION)
        status = await _until_a_second_of_books(client, sid)
        await client.post(f"/api/sessions/{sid}/stop")
        async with asyncio.timeout(30):
            while status["status"] in ("starting", "running"):
                status = await (await client.get(f"/api/sessions/{sid}")).json()
                await asyncio.sleep(0.05)
        equity = await client.get(f"/api/sessions/{sid}/equity")
        curve = await equity.json()
    assert equity.status == 200 and curve["run_id"] == status["run_id"], curve
    assert curve["equity"], "the server no longer shows the session's equity"
    with RunStore(profile_db, read_only=True) as store:
        run = store.run(status["run_id"])
        states = {s.portfolio: s.run_id for s in load_trading_states(store.connection)}
        orders = store.connection.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    assert run.status == "stopped" or run.status in ("completed", "interrupted"), run
    assert states == {"main": status["run_id"]}, states
    assert orders >= 1  # FlipOnce's entry


async def test_a_live_session_goes_on_after_the_server_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    """A server stopped with a live session running goes on with it at its next start, as
    a new run of the account (live runs reconcile with the exchange, they do not resume
    from checkpoints), and holds the account again."""
    monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp_path / "data"))
    _live_env(monkeypatch, tmp_path)
    async with EmulatorServer(symbols=("ETHUSDT",), seed=3, tick_interval_s=0.1) as exchange:
        monkeypatch.setenv("PERPS_BOT__EXCHANGE__BASE_URL", exchange.base_url)
        statuses = []
        for _ in range(2):
            manager = SessionManager(tmp_path / "server.sqlite", allow_live=True)
            await manager.open()
            try:
                app = create_app(manager, token=None, hosts=frozenset())
                async with TestClient(TestServer(app, host="127.0.0.1")) as client:
                    listed = (await (await client.get("/api/sessions")).json())["sessions"]
                    sid = listed[0]["session_id"] if listed else await start(client, LIVE_SESSION)
                    statuses.append(await _until_a_second_of_books(client, sid))
                    code, out = await cli_bot("--profile", "canary", "--duration", "1s")
                    assert code == 2 and "in use by another bot" in out, out
            finally:
                await manager.close()
    first, second = statuses
    assert second["status"] == "running" and second["run_id"] != first["run_id"], second
