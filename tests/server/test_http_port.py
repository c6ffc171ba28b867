"""A bot run with `--http-port` serves the read endpoints and the dashboard of its one
run (SPEC 11), read-only: no sessions started, no controls."""

import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from perps_bot.config import load_settings
from perps_bot.orchestrator.runner import run_bot
from perps_bot.orchestrator.wiring import Run
from perps_bot.server import show_run


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
