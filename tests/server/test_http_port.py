"""A bot run with `--http-port` serves the read endpoints and the dashboard of its one
run (SPEC 11), read-only: no sessions started, no controls."""

import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from scripts.headless import Chromium

from perps_bot.config import load_settings
from perps_bot.orchestrator.runner import run_bot
from perps_bot.orchestrator.wiring import Run
from perps_bot.server import show_run
from tests.server.browser import needs_chromium, until


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_bot_run_serves_its_own_dashboard_and_read_api(
    tmp_path: Path, run_dirs: dict[str, str], in_repo: Path
) -> None:
    port = _free_port()
    settings = load_settings("dev", {"run": {**run_dirs, "dev_fast": True, "duration": "400d",
                                             "seed": 3, "http_port": port}})  # fmt: skip
    seen: dict[str, object] = {}
    shown = show_run(port)

    @contextlib.asynccontextmanager
    async def attach(run: Run) -> AsyncIterator[None]:
        async with shown(run):
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:
                listed = await (await http.get(f"{base}/api/sessions")).json()
                [session] = listed["sessions"]
                sid = session["session_id"]
                seen["session"] = session
                seen["portfolio"] = await (
                    await http.get(f"{base}/api/sessions/{sid}/portfolio")
                ).json()
                seen["page"] = (await http.get(f"{base}/")).status
                status = await http.get(f"{base}/status")
                seen["status"] = status.status, status.content_type, await status.json()
                refused = await http.post(f"{base}/api/sessions/{sid}/portfolios/main/pause")
                seen["pause"] = refused.status, (await refused.json())["error"]
                start = await http.post(f"{base}/api/sessions", json={})
                seen["start"] = start.status
                rebound = await http.get(f"{base}/api/sessions", headers={"Host": "evil.example"})
                seen["rebound"] = rebound.status
            run.orchestrator.request_stop("test done")
            yield

    result = await run_bot(settings, progress=False, attach=attach)
    assert result.status == "completed"
    session = seen["session"]
    assert isinstance(session, dict)
    assert session["run_id"] == result.run_id and session["controls"] is False
    assert session["status"] == "running"
    portfolio = seen["portfolio"]
    assert isinstance(portfolio, dict) and [p["id"] for p in portfolio["portfolios"]] == ["main"]
    assert seen["page"] == 200
    # /status (SPEC 5): the run's state as JSON, its portfolios' equity and risk included
    code, content_type, status = seen["status"]  # type: ignore[misc]
    assert (code, content_type) == (200, "application/json")
    [shown] = status["sessions"]
    assert shown["run_id"] == result.run_id and shown["status"] == "running"
    assert shown["risk_state"] == "ACTIVE" and shown["mode"] == "dev"
    [main] = shown["portfolio"]["portfolios"]
    assert main["id"] == "main" and main["equity"] > 0 and "drawdown_headroom" in main["risk"]
    assert shown["portfolio"]["account"]["equity"] == main["equity"]
    assert seen["pause"] == (403, "this server does not allow control (read-only)")
    assert seen["start"] == 403
    assert seen["rebound"] == 403  # a page rebound to 127.0.0.1 reads nothing (DNS rebinding)


@pytest.mark.integration
@needs_chromium
async def test_the_dashboard_of_a_run_whose_id_is_not_url_safe(
    tmp_path: Path, run_dirs: dict[str, str], in_repo: Path
) -> None:
    """A profile's name is free text and the run id carries it: the page still finds the
    run (its id escaped in every URL it builds)."""
    port = _free_port()
    run = {**run_dirs, "dev_fast": True, "duration": "400d", "seed": 3, "http_port": port}
    settings = load_settings("dev", {"profile": "desk #1 & co?", "run": run})
    shown: dict[str, Any] = {}
    show = show_run(port)

    @contextlib.asynccontextmanager
    async def attach(run: Run) -> AsyncIterator[None]:
        async with show(run), Chromium() as page:
            await page.open(f"http://127.0.0.1:{port}/")
            await until(page, SHOWN)
            shown.update(await page.eval(PAGE))
            shown["errors"] = page.errors
            run.orchestrator.request_stop("test done")
            yield

    result = await run_bot(settings, progress=False, attach=attach)
    assert "desk #1 & co?" in result.run_id
    assert shown["message"] == "" and shown["rows"] == ["main"], shown
    assert shown["session"] == result.run_id and shown["errors"] == []


SHOWN = """document.querySelectorAll("#portfolios tbody tr").length > 0
  || document.getElementById("message").textContent !== ''"""
PAGE = """(() => ({
  message: document.getElementById("message").textContent,
  rows: [...document.querySelectorAll("#portfolios tbody tr")].map((r) => r.cells[0].innerText),
  session: document.getElementById("session-select").value,
}))()"""
