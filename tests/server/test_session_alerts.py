"""Alerts of the sessions of a server (SPEC 12: sent off the trading path): a session
that ends with alerts its target never takes waits for them (alerts.flush_timeout)
without holding the server's event loop, which every other session trades on and
every request is answered on."""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.server.helpers import dev_session, ended, read_until, serving, start

pytestmark = pytest.mark.usefixtures("server_logs")


async def test_a_session_waiting_for_its_alerts_does_not_stall_the_server(
    tmp_path: Path, silent_target: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"json://127.0.0.1:{silent_target}?rto=30&cto=30"
    monkeypatch.setenv("PERPS_BOT__ALERTS__URLS", f'["{url}"]')
    monkeypatch.setenv("PERPS_BOT__ALERTS__FLUSH_TIMEOUT", "6s")
    lags: list[float] = []

    async def probe() -> None:  # how late the loop runs a callback due every 50 ms
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + 0.05
            await asyncio.sleep(0.05)
            lags.append(loop.time() - due)

    async with serving(tmp_path / "server.sqlite") as (client, _):
        sid = await start(client, dev_session("1d"))
        ws = await client.ws_connect(f"/api/sessions/{sid}/stream")
        seen: list[dict[str, Any]] = []
        await read_until(ws, seen, lambda m: m["type"] == "fill")
        watching = asyncio.create_task(probe())
        await read_until(ws, seen, ended)
        watching.cancel()
    assert seen[-1]["data"]["status"] == "completed"
    # the run's end waited up to 6 s for the alerts: on another thread, not on the loop
    assert max(lags) < 3.0, max(lags)
