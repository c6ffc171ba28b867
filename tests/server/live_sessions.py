"""A session server allowed to trade live (`serve --allow-live`) against the exchange
emulator on 127.0.0.1, for the tests of live sessions: the canary profile's account,
whose own database is `data/perps_bot.canary.sqlite` under the test's folder."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from perps_bot.server import SessionManager, create_app
from perps_emulator import EmulatorServer
from tests.live.live_helpers import API_KEY, API_SECRET
from tests.server.helpers import start

LIVE_SESSION = {
    "profile": "canary",
    "portfolios": [{"strategy": "tests.live.canary_strategy:FlipOnce",
                    "params": {"hold": 10_000}}],
    "duration": "60s",
}  # fmt: skip

Status = dict[str, Any]


def live_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Keys and a fast poll for a live run on the emulator; logs and the profile's data
    in `tmp_path`. Returns the canary profile's own database."""
    for key, value in {"API_KEY": API_KEY, "API_SECRET": API_SECRET,
                       "POLL_INTERVAL": "100ms"}.items():  # fmt: skip
        monkeypatch.setenv(f"PERPS_BOT__EXCHANGE__{key}", value)
    monkeypatch.setenv("PERPS_BOT__RUN__LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data" / "perps_bot.canary.sqlite"


@asynccontextmanager
async def emulated(
    monkeypatch: pytest.MonkeyPatch, *, eth_held: float = 0.0
) -> AsyncIterator[EmulatorServer]:
    """The exchange emulator (ETHUSDT) the profile's runs trade on; `eth_held` ETH is
    held on the account already, placed by no bot."""
    async with EmulatorServer(symbols=("ETHUSDT",), seed=3, tick_interval_s=0.1) as exchange:
        monkeypatch.setenv("PERPS_BOT__EXCHANGE__BASE_URL", exchange.base_url)
        if eth_held:
            exchange.engine.place_order({"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET",
                                         "quantity": str(eth_held)})  # fmt: skip
        yield exchange


@asynccontextmanager
async def live_serving(
    tmp_path: Path, database: Path | None = None
) -> AsyncIterator[tuple[TestClient[Any, Any], SessionManager]]:
    """A server allowed to trade live, on its database `database` (by default
    `server.sqlite`, another than the profile's), until the block ends (then it stops as
    on Ctrl-C); and its manager."""
    manager = SessionManager(database or tmp_path / "server.sqlite", allow_live=True)
    await manager.open()
    try:
        app = create_app(manager, token=None, hosts=frozenset())
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            yield client, manager
    finally:
        await manager.close()


@asynccontextmanager
async def live_server(
    tmp_path: Path, database: Path | None = None
) -> AsyncIterator[TestClient[Any, Any]]:
    """`live_serving`'s client."""
    async with live_serving(tmp_path, database) as (client, _):
        yield client


async def the_live_session(client: TestClient[Any, Any]) -> str:
    """The id of the session a restarted server went on with, or of a new live one."""
    listed = (await (await client.get("/api/sessions")).json())["sessions"]
    return str(listed[0]["session_id"]) if listed else await start(client, LIVE_SESSION)


async def until(client: TestClient[Any, Any], sid: str, done: Callable[[Status], bool]) -> Status:
    """The session's status once `done(status)` holds (60 s at most)."""
    async with asyncio.timeout(60):
        while True:
            status: Status = await (await client.get(f"/api/sessions/{sid}")).json()
            if done(status):
                return status
            await asyncio.sleep(0.05)


def ended(status: Status) -> bool:
    return status["status"] not in ("starting", "running")


def a_second_of_books(status: Status) -> bool:
    """The session has handled a second of the market (the strategy's entry comes with
    its first book; an entry sent then is open on the exchange)."""
    assert not ended(status), status
    started, now = status.get("started"), status.get("now")
    return bool(started and now and _ms(now) - _ms(started) >= 1_000)


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
