"""The planner endpoints of a run asked to stop (real HTTP on 127.0.0.1, the fake model)."""

import asyncio
from pathlib import Path

import pytest

from tests.harness.polling import until
from tests.plans.fake_llm import FakeLLM
from tests.server.helpers import ended, read_until, serving, start
from tests.server.test_session_plans import SESSION, llm, running

__all__ = ["llm"]  # the fixture


LATE = [
    ("POST", "replan", None),
    ("PUT", "strategy", {"template": "default"}),
    ("POST", "replan?portfolio=a", None),
]


@pytest.mark.pure_python  # holds the engine's close (an instance patch)
async def test_a_stopping_session_takes_no_replan_and_no_prompt(
    tmp_path: Path, llm: FakeLLM
) -> None:
    """Without ?portfolio=, replan and strategy did not refuse a run asked to stop (the
    per-portfolio controls answer 409): the model was asked and a 200 answered for a
    plan or a prompt the ending run never used."""
    async with serving(tmp_path / "server.sqlite") as (client, manager):
        sid = await start(client, SESSION)
        ws = await client.ws_connect(f"/api/sessions/{sid}/stream")
        await read_until(ws, [], running)
        s = manager.sessions[sid]
        assert s.run is not None
        orchestrator, release = s.run.orchestrator, asyncio.Event()
        closing = orchestrator.close

        async def held_close() -> None:  # the run stays `stopping` until released
            await release.wait()
            await closing()

        orchestrator.close = held_close  # type: ignore[method-assign]
        try:
            assert (await client.post(f"/api/sessions/{sid}/stop")).status == 200
            await until(lambda: orchestrator.stop_requested)
            asked = len(llm.requests)
            for method, path, body in LATE:
                resp = await client.request(method, f"/api/sessions/{sid}/{path}", json=body)
                assert resp.status == 409, (path, await resp.text())
                assert "is stopping" in (await resp.json())["error"]
            assert len(llm.requests) == asked
        finally:
            release.set()
        await read_until(ws, [], ended)
    assert s.status == "stopped" and s.prompts == {}
