"""A live session's prompt given through PUT /strategy, and the fingerprint of the run
that trades it: a live session goes on after a restart as a new run, which the kept
prompt is given to again; that run trades that prompt, and its fingerprint says so."""

import json
from pathlib import Path
from typing import Any

import pytest

from perps_bot.storage import RunStore
from tests.plans.fake_llm import fake_llm
from tests.server.helpers import start
from tests.server.live_sessions import emulated, live_env, live_serving, until

pytestmark = pytest.mark.integration

SESSION = {
    "profile": "canary",
    "portfolios": [{"strategy": "llm_planner", "params": {"plan_interval": "3650d"}}],
    "duration": "600s",
}


def _no_triggers(_request: dict[str, Any]) -> str:
    return json.dumps({"rationale": "wait", "triggers": []})


def _fingerprint(db: Path, run_id: str) -> str:
    with RunStore(db, read_only=True) as store:
        return store.run(run_id).strategy_fingerprint


@pytest.mark.pure_python  # a live session: live runs are plain Python (perps_bot.compiled)
async def test_the_new_run_of_a_live_session_has_the_fingerprint_of_its_prompt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    """It had the fingerprint of the profile's prompt: a promotion earned by the run
    went to a prompt that never traded in it."""
    db = live_env(monkeypatch, tmp_path)
    with fake_llm() as llm:
        llm.respond = _no_triggers
        monkeypatch.setenv("PERPS_BOT__LLM__BASE_URL", llm.base_url)
        async with emulated(monkeypatch):
            async with live_serving(tmp_path) as (client, _):
                sid = await start(client, SESSION)
                first = await until(client, sid, lambda s: s["status"] == "running")
                profiles = _fingerprint(db, first["run_id"])
                resp = await client.put(f"/api/sessions/{sid}/strategy",
                                        json={"template": "mean_reversion"})  # fmt: skip
                assert resp.status == 200, await resp.text()
                assert _fingerprint(db, first["run_id"]) != profiles
            async with live_serving(tmp_path) as (client, _):
                again = await until(client, sid, lambda s: s["status"] == "running"
                                    and s["run_id"] != first["run_id"])  # fmt: skip
                assert _fingerprint(db, again["run_id"]) != profiles
                assert (await client.post(f"/api/sessions/{sid}/stop")).status == 200
