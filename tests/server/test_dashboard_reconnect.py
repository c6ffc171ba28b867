"""The dashboard after its server comes back (SPEC 11: a server started again goes on
with its sessions): the page shows "disconnected" while the server is away, then
connects again by itself, clears the banner and rebuilds its view from the new hello
(no reload needed)."""

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from scripts.headless import Chromium

from perps_bot.server import SessionManager, create_app, views
from tests.server.browser import needs_chromium, until
from tests.server.helpers import dev_session

pytestmark = pytest.mark.usefixtures("server_logs")

CONNECTED = "document.body.dataset.connected === '%s'"
NEWEST = "document.querySelector('#trades tbody tr td')?.innerText"
ROWS = """[...document.querySelectorAll("#portfolios tbody tr")].map((r) =>
  [r.cells[0].innerText, r.cells[2].innerText, r.querySelectorAll("button").length])"""
BANNER = "!document.getElementById('disconnected-banner').hidden"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def _http(manager: SessionManager, port: int) -> AsyncIterator[None]:
    """The server's HTTP side on `port` (its sessions live on in `manager`)."""
    runner = web.AppRunner(create_app(manager), shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield
    finally:
        await runner.cleanup()  # its websockets are closed: the pages are disconnected


@pytest.mark.integration
@needs_chromium
async def test_the_page_connects_again_when_the_server_is_back(tmp_path: Path) -> None:
    port = _free_port()
    manager = SessionManager(tmp_path / "server.sqlite")
    await manager.open()
    try:
        s = await manager.start(dev_session("365d"))
        async with Chromium() as page:
            async with _http(manager, port):
                await page.open(f"http://127.0.0.1:{port}/?session={s.id}")
                await until(page, CONNECTED % "1")
                await until(page, f"{NEWEST} !== undefined")
            await until(page, CONNECTED % "0", timeout=10)
            away = await page.eval(BANNER)
            await until(page, "retries >= 2", timeout=10)  # one attempt failed meanwhile
            s.stop()  # it ends while the page is away
            assert s.task is not None
            await s.task
            async with _http(manager, port):
                # it ended meanwhile: the hello, then the stream's clean close
                await until(page, CONNECTED % "ended", timeout=30)
                back = await page.eval(BANNER)
                await until(page, f"{ROWS}.length > 0 && {ROWS}.every((r) => r[1] === '—')")
                rows = await page.eval(ROWS)
                shown = await page.eval(NEWEST)
                status = await page.eval("document.getElementById('session-status').textContent")
                errors = [e for e in page.errors if not e.startswith("WebSocket connection")]
                [last] = views.trades(manager.reader(s), s, 1)
    finally:
        await manager.close()
    assert away and not back and status.startswith("stopped")
    # the portfolios as stored (no live cells, no buttons), the trades closed meanwhile
    assert [r[0] for r in rows] == ["sma_cross", "mean_reversion"] and not any(r[2] for r in rows)
    # the trades closed while it was away are on the page: its newest is the session's
    assert shown == last["close_time"][:19], (shown, last)
    assert errors == []
