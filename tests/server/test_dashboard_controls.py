"""Pause / resume / flatten on a session that trades on the wall clock (its equity rows,
and the portfolio snapshots they bring, come once a minute): the stream shows a
control's effect at once, and the dashboard's buttons follow it and the session's end."""

from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse
from scripts.headless import Chromium

from tests.server.browser import needs_chromium, until
from tests.server.helpers import dev_session, read_until, serving, start

pytestmark = pytest.mark.usefixtures("server_logs")

ROWS = """[...document.querySelectorAll("#portfolios tbody tr")].map((row) =>
  [row.cells[0].innerText, row.cells[2].innerText,
   [...row.querySelectorAll("button")].map((b) => b.dataset.action).join(" ")])"""


async def _running(ws: ClientWebSocketResponse) -> list[dict[str, Any]]:
    """The stream's messages up to the one that shows the session running."""

    def running(m: dict[str, Any]) -> bool:
        shown = m["data"].get("session", m["data"])
        return m["type"] in ("hello", "status") and shown["status"] == "running"

    seen: list[dict[str, Any]] = []
    await read_until(ws, seen, running)
    return seen


async def test_a_control_is_followed_at_once_by_the_portfolios_it_changed(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path / "server.sqlite") as (client, _):
        sid = await start(client, dev_session("2h", dev_fast=False))
        ws = await client.ws_connect(f"/api/sessions/{sid}/stream")
        await _running(ws)
        done = await client.post(f"/api/sessions/{sid}/portfolios/sma_cross/pause")
        assert done.status == 200
        seen: list[dict[str, Any]] = []
        await read_until(ws, seen, lambda m: m["type"] in ("portfolio", "equity"), timeout=90)
        await client.post(f"/api/sessions/{sid}/stop")
    # the portfolios as the control left them, not only with the next minute's equity
    assert [m["type"] for m in seen] == ["control", "portfolio"], [m["type"] for m in seen]
    shown = {p["id"]: p["paused"] for p in seen[-1]["data"]["portfolios"]}
    assert shown == {"sma_cross": True, "mean_reversion": False}


@pytest.mark.integration
@needs_chromium
async def test_the_buttons_follow_a_pause_and_go_when_the_session_stops(tmp_path: Path) -> None:
    async with serving(tmp_path / "server.sqlite") as (client, _):
        sid = await start(client, dev_session("2h", dev_fast=False))
        await _running(await client.ws_connect(f"/api/sessions/{sid}/stream"))
        async with Chromium() as page:
            await page.open(f"http://127.0.0.1:{client.port}/?session={sid}")
            await until(page, "document.querySelectorAll('#portfolios button').length === 4")
            before = await page.eval(ROWS)
            await page.eval("document.querySelector('button[data-pid=sma_cross]"
                            "[data-action=pause]').click()")  # fmt: skip
            await until(page, "document.getElementById('message').textContent !== ''")
            await until(page, f"JSON.stringify({ROWS}[0]) !== '{_json(before[0])}'", timeout=10)
            paused = await page.eval(ROWS)
            await client.post(f"/api/sessions/{sid}/stop")
            await until(page, "document.getElementById('session-status').textContent"
                              ".startsWith('stopped')")  # fmt: skip
            await until(page, "document.querySelectorAll('#portfolios button').length === 0",
                        timeout=10)  # fmt: skip
            errors = page.errors
    assert before == [["sma_cross", "trading", "pause flatten"],
                      ["mean_reversion", "trading", "pause flatten"]]  # fmt: skip
    assert paused == [["sma_cross", "paused", "resume flatten"],
                      ["mean_reversion", "trading", "pause flatten"]]  # fmt: skip
    assert errors == []


def _json(row: list[str]) -> str:
    return '["' + '","'.join(row) + '"]'
