"""SPEC 1, 6 and 11: a live session of a profile other than the canary needs a recorded
promotion to prod for every strategy it runs, like `perps-bot --profile prod`. The
server took the session (201) and the session only failed later, in its run's
preflight: a trader asking for it learns it at once now, with a 403 and one line, and
no session is kept (the emulator sees no request)."""

from pathlib import Path

import pytest

from tests.server.live_sessions import LIVE_SESSION, emulated, live_env, live_server

pytestmark = pytest.mark.integration


async def test_a_live_session_of_an_unpromoted_strategy_is_refused_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    live_env(monkeypatch, tmp_path)
    async with emulated(monkeypatch) as exchange, live_server(tmp_path) as client:
        resp = await client.post("/api/sessions", json=LIVE_SESSION | {"profile": "prod"})
        body = await resp.json()
        listed = (await (await client.get("/api/sessions")).json())["sessions"]
        if resp.status == 201:  # the defect: stop what was taken
            await client.post(f"/api/sessions/{body['session_id']}/stop")
    assert resp.status == 403, body
    assert "no promotion to prod recorded" in body["error"] and "\n" not in body["error"]
    assert listed == []
    assert not [c for c in exchange.calls if c[1].startswith("/fapi/v1/order")]
