"""A replan whose model answers after a PUT /strategy swapped the prompt (real HTTP on
127.0.0.1, the fake model)."""

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

from tests.harness.polling import until
from tests.plans.fake_llm import FakeLLM
from tests.server.helpers import serving, start
from tests.server.test_session_plans import ONE, llm

__all__ = ["llm"]  # the fixture


async def test_a_plan_asked_under_the_old_prompt_is_not_adopted_after_a_swap(
    tmp_path: Path, llm: FakeLLM
) -> None:
    """A replan asked the model with the prompt in force; a PUT /strategy answered while
    the model was thinking gave the run the new prompt's fingerprint, and then the
    plan of the old prompt was adopted under it. The replan is refused (409, ask
    again) and the planner keeps no plan of the old prompt."""
    gate = threading.Event()

    def slow(request: dict[str, Any]) -> str:
        gate.wait(60)
        system = request["messages"][0]["content"]
        return json.dumps({"rationale": f"echo: {system[:12]}", "triggers": []})

    async with serving(tmp_path / "server.sqlite") as (client, manager):
        llm.respond = lambda _request: "{not json"  # the run's own first plan: none
        sid = await start(client, ONE)
        await until(lambda: len(llm.requests) == 1, 120, 0.01)
        llm.respond = slow
        base = f"/api/sessions/{sid}"
        replan = asyncio.create_task(client.post(f"{base}/replan"))
        await until(lambda: len(llm.requests) == 2, 60, 0.01)
        resp = await client.put(f"{base}/strategy", json={"prompt": "NEW PROMPT"})
        assert resp.status == 200, await resp.text()
        gate.set()
        answer = await replan
        assert answer.status == 409, await answer.text()
        error = (await answer.json())["error"]
        assert "the prompt was changed while the model was asked" in error, error
        assert "\n" not in error, error
        s = manager.sessions[sid]
        assert s.run is not None
        (planner,) = [p.strategy for p in s.run.orchestrator.portfolios]
        assert getattr(planner, "plan", None) is None
        llm.respond = lambda request: json.dumps(
            {"rationale": request["messages"][0]["content"][:10], "triggers": []})  # fmt: skip
        again = await client.post(f"{base}/replan")
        assert again.status == 200, await again.text()
        assert (await again.json())["replans"][0]["plan"]["rationale"] == "NEW PROMPT"
        assert (await client.post(f"{base}/stop")).status == 200
        await until(lambda: s.status not in ("starting", "running"), 120, 0.01)
