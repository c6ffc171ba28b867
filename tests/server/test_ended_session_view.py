"""A session that ended still says when its run started and ended and of which profile
(SPEC 11: GET /api/sessions/{id} shows status, run id, risk state, started, ends): on
the stream's last status message, from the API, and after the server started again."""

from pathlib import Path
from typing import Any

import pytest
from scripts.headless import Chromium

from perps_bot.domain import iso_utc
from perps_bot.storage import RunStore
from tests.server.browser import needs_chromium, until
from tests.server.helpers import dev_session, ended, read_until, serving, start

pytestmark = pytest.mark.usefixtures("server_logs")


async def test_an_ended_session_says_when_its_run_started_and_ended(tmp_path: Path) -> None:
    """They were left out once the run ended (from the stream's last status message on),
    and after a restart: a client reading `started` met a missing key."""
    db = tmp_path / "server.sqlite"
    async with serving(db) as (client, _):
        sid = await start(client, dev_session("1d"))
        ws = await client.ws_connect(f"/api/sessions/{sid}/stream")
        seen: list[dict[str, Any]] = []
        await read_until(ws, seen, ended)
        await ws.close()
        last = seen[-1]["data"]
        shown = await (await client.get(f"/api/sessions/{sid}")).json()
        listed = (await (await client.get("/api/sessions")).json())["sessions"]
    async with serving(db) as (client, _):  # the server started again
        again = await (await client.get(f"/api/sessions/{sid}")).json()
    with RunStore(db, read_only=True) as store:
        run = store.run(shown["run_id"])
    assert run.start_ts is not None and run.end_ts is not None
    expected = {"profile": "dev", "started": iso_utc(run.start_ts), "ends": iso_utc(run.end_ts)}
    for view in (last, shown, listed[0], again):
        assert view["status"] == "completed", view
        assert {key: view.get(key) for key in expected} == expected, view


@pytest.mark.integration
@needs_chromium
async def test_the_dashboard_of_an_ended_session_shows_its_run_times(tmp_path: Path) -> None:
    """The header's clock (now → end while the session runs) was blank once it ended:
    the page showed no time at all for what it was showing. It shows start → end."""
    async with serving(tmp_path / "server.sqlite") as (client, _):
        sid = await start(client, dev_session("1d"))
        ws = await client.ws_connect(f"/api/sessions/{sid}/stream")
        await read_until(ws, [], ended)
        await ws.close()
        shown = await (await client.get(f"/api/sessions/{sid}")).json()
        async with Chromium() as page:
            await page.open(f"http://127.0.0.1:{client.port}/?session={sid}")
            # its stream is the hello, then a clean close: the page says the session
            # ended, not that the server is gone, and does not open it again
            await until(page, "document.body.dataset.connected === 'ended'")
            await until(page, "document.getElementById('clock').textContent !== ''", 20)
            clock = await page.eval("document.getElementById('clock').textContent")
            badge = await page.eval("document.getElementById('connection').textContent")
            banner = await page.eval("!document.getElementById('disconnected-banner').hidden")
            retries = await page.eval("retries")
            errors = page.errors
    assert errors == []
    assert (badge, banner, retries) == ("session ended", False, 0)
    assert clock == f"{shown['started'][:19]} → {shown['ends'][:19]}"
