"""The planner endpoints of the session server (SPEC 16 on SPEC 11), through real HTTP
on 127.0.0.1 with the fake OpenAI-compatible server: a plan asked for now, a new
prompt used from the next plan, the plan history per portfolio, and every refusal as
a 4xx (502 when the model gives no plan) with a one-line error."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perps_bot.orchestrator.checkpoint import Checkpointer
from perps_bot.strategies.llm_planner import LlmPlanner
from tests.harness.polling import until
from tests.plans.fake_llm import FakeLLM, fake_llm
from tests.server.helpers import ended, read_until, serving, start

LONG = "3650d"  # the run asks once, at its first event: every other plan is asked here


def echo(request: dict[str, Any]) -> str:
    """A plan whose rationale repeats the start of the system prompt (no triggers); a
    prompt that starts with BROKEN gets an answer that is not JSON."""
    system = request["messages"][0]["content"]
    if system.startswith("BROKEN"):
        return "{not json"
    return json.dumps({"rationale": f"echo: {system.splitlines()[0][:20]}", "triggers": []})


@pytest.fixture
def llm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path) -> Iterator[FakeLLM]:
    monkeypatch.setenv("PERPS_BOT__RUN__LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp_path / "data"))
    with fake_llm() as fake:
        fake.respond = echo
        monkeypatch.setenv("PERPS_BOT__LLM__BASE_URL", fake.base_url)
        yield fake


SESSION = {
    "profile": "dev", "seed": 3, "duration": LONG, "dev_fast": True,
    "portfolios": [
        {"id": "a", "strategy": "llm_planner", "params": {"plan_interval": LONG}},
        {"id": "b", "strategy": "llm_planner",
         "params": {"plan_interval": LONG, "template": "mean_reversion"}},
        {"id": "s", "strategy": "sma_cross", "symbols": ["BTC-PERP"]},
    ],
}  # fmt: skip


def running(message: dict[str, Any]) -> bool:
    data = message["data"].get("session", message["data"])
    return message["type"] in ("hello", "status") and data.get("status") == "running"


def rationales(plans: dict[str, Any], pid: str) -> list[str]:
    mine = next(p for p in plans["portfolios"] if p["id"] == pid)
    return [p["rationale"] for p in mine["plans"]]


async def test_replan_a_new_prompt_and_the_plan_history(tmp_path: Path, llm: FakeLLM) -> None:
    async with serving(tmp_path / "server.sqlite") as (client, _):
        sid = await start(client, SESSION)
        ws = await client.ws_connect(f"/api/sessions/{sid}/stream")
        seen: list[dict[str, Any]] = []
        await read_until(ws, seen, running)
        base = f"/api/sessions/{sid}"

        resp = await client.post(f"{base}/replan?portfolio=b")
        assert resp.status == 200, await resp.text()
        (got,) = (await resp.json())["replans"]
        assert got["portfolio"] == "b" and got["accepted"] is True
        assert got["plan"]["rationale"] == "echo: You trade mean rever"

        resp = await client.put(f"{base}/strategy?portfolio=b", json={"prompt": "PROMPT-B: brief"})
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["portfolios"] == ["b"]
        resp = await client.post(f"{base}/replan")  # every planner of the session
        assert resp.status == 200, await resp.text()
        replans = {r["portfolio"]: r["plan"]["rationale"] for r in (await resp.json())["replans"]}
        assert replans == {"a": "echo: You are a discipline",
                           "b": "echo: PROMPT-B: brief"}  # fmt: skip
        assert llm.requests[-1]["messages"][0]["content"].startswith("PROMPT-B: brief\n")

        plans = await (await client.get(f"{base}/plans")).json()
        assert [p["id"] for p in plans["portfolios"]] == ["a", "b", "s"]
        of_a, of_b = rationales(plans, "a"), rationales(plans, "b")
        assert of_a and set(of_a) == {"echo: You are a discipline"}
        assert of_b[-1] == "echo: PROMPT-B: brief" and len(of_b) >= 2
        assert set(of_b[:-1]) == {"echo: You trade mean rever"}
        assert rationales(plans, "s") == []
        controls = [m["data"]["action"] for m in seen if m["type"] == "control"]

        resp = await client.put(f"{base}/strategy?portfolio=b", json={"prompt": "BROKEN now"})
        assert resp.status == 200
        resp = await client.post(f"{base}/replan?portfolio=b")
        assert resp.status == 502
        error = (await resp.json())["error"]
        assert error.startswith("no new plan (b: answer is not JSON") and "stays in force" in error

        assert (await client.post(f"{base}/stop")).status == 200
        await read_until(ws, seen, ended)
        controls = [m["data"]["action"] for m in seen if m["type"] == "control"]
        assert controls == ["replan", "strategy", "replan", "replan", "strategy", "replan"]
        late = await client.post(f"{base}/replan")
        assert late.status == 409 and "not running" in (await late.json())["error"]
        late = await client.put(f"{base}/strategy", json={"template": "default"})
        assert late.status == 409 and "not running" in (await late.json())["error"]
        stored = await (await client.get(f"{base}/plans")).json()
        assert rationales(stored, "b")[-1] == "echo: PROMPT-B: brief"  # as stored, after the end


BAD = [
    ("POST", "replan?portfolio=s", None, 409, "no llm_planner to ask (s: sma_cross)"),
    ("POST", "replan?portfolio=ghost", None, 404, "no portfolio 'ghost'"),
    ("PUT", "strategy", {}, 400, "give one of template, prompt, prompt_file (got 0)"),
    ("PUT", "strategy", {"template": "default", "prompt": "x"}, 400, "(got 2)"),
    ("PUT", "strategy", {"template": "yolo"}, 400, "unknown template 'yolo' (known: aggressive"),
    ("PUT", "strategy", {"prompt": "  "}, 400, "prompt: expected a non-empty text"),
    ("PUT", "strategy", {"prompt": "x" * 20_001}, 400, "at most 20000 characters"),
    ("PUT", "strategy", {"prompt_file": "/no/such.txt"}, 400, "prompt_file: prompt"),
    ("PUT", "strategy", {"colour": "red"}, 400, "unknown field 'colour'"),
    ("PUT", "strategy", {"prompt": "a \ud800 b"}, 400, "half a surrogate pair"),
    ("PUT", "strategy", [1], 400, "JSON object"),
    ("PUT", "strategy?portfolio=s", {"template": "default"}, 409, "no llm_planner"),
]  # fmt: skip


async def test_bad_planner_requests_are_4xx(tmp_path: Path, llm: FakeLLM) -> None:
    async with serving(tmp_path / "server.sqlite") as (client, _):
        sid = await start(client, SESSION)
        ws = await client.ws_connect(f"/api/sessions/{sid}/stream")
        await read_until(ws, [], running)
        for method, path, body, status, message in BAD:
            resp = await client.request(method, f"/api/sessions/{sid}/{path}", json=body)
            assert resp.status == status, (path, body, await resp.text())
            error = (await resp.json())["error"]
            assert message in error and "\n" not in error, (path, error)
        malformed = await client.put(
            f"/api/sessions/{sid}/strategy",
            data=b"{nope",
            headers={"Content-Type": "application/json"},
        )
        assert malformed.status == 400 and "malformed JSON" in (await malformed.json())["error"]
        missing = await client.post("/api/sessions/nope/replan")
        assert missing.status == 404
        await client.post(f"/api/sessions/{sid}/stop")
        await read_until(ws, [], ended)


async def test_a_new_prompt_is_kept_when_the_server_restarts(tmp_path: Path, llm: FakeLLM) -> None:
    """The prompt the API answered for, then the server stopped before the run's next
    checkpoint (every 2 s of wall time; none here): the session went on from a
    checkpoint with the old prompt. The prompt is kept with the session."""
    db = tmp_path / "server.sqlite"
    async with serving(db) as (client, manager):
        sid = await start(client, SESSION)
        ws = await client.ws_connect(f"/api/sessions/{sid}/stream")
        await read_until(ws, [], running)
        await ws.close()
        run = manager.sessions[sid].run
        assert run is not None and isinstance(run.orchestrator.after_batch, Checkpointer)
        run.orchestrator.after_batch.every_s = 1e9  # no checkpoint for the time that passes
        resp = await client.put(f"/api/sessions/{sid}/strategy?portfolio=b",
                                json={"prompt": "PROMPT-B: kept"})  # fmt: skip
        assert resp.status == 200, await resp.text()
    async with serving(db) as (client, manager):
        again = manager.sessions[sid]
        await until(lambda: again.run is not None, 120, 0.01)
        resp = await client.post(f"/api/sessions/{sid}/replan?portfolio=b")
        assert resp.status == 200, await resp.text()
        (got,) = (await resp.json())["replans"]
        assert got["plan"]["rationale"] == "echo: PROMPT-B: kept"


async def test_a_plan_asked_for_is_in_force_when_the_server_restarts(
    tmp_path: Path, llm: FakeLLM
) -> None:
    """The plan the API answered with (its replan), then the server stopped before the
    run's next checkpoint: the session went on from a checkpoint with the plan before,
    while the plan history showed the new one as adopted."""
    db = tmp_path / "server.sqlite"
    async with serving(db) as (client, manager):
        sid = await start(client, SESSION)
        ws = await client.ws_connect(f"/api/sessions/{sid}/stream")
        await read_until(ws, [], running)
        await ws.close()
        run = manager.sessions[sid].run
        assert run is not None and isinstance(run.orchestrator.after_batch, Checkpointer)
        run.orchestrator.after_batch.every_s = 1e9  # no checkpoint for the time that passes
        llm.respond = lambda _: json.dumps({"rationale": "asked for", "triggers": []})
        resp = await client.post(f"/api/sessions/{sid}/replan?portfolio=a")
        assert resp.status == 200, await resp.text()
    async with serving(db) as (client, manager):
        again = manager.sessions[sid]
        await until(lambda: again.run is not None, 120, 0.01)
        assert again.run is not None
        [planner] = [p.strategy for p in again.run.orchestrator.portfolios if p.id == "a"]
        assert isinstance(planner, LlmPlanner) and planner.plan is not None
        assert planner.plan.rationale == "asked for"


def fingerprint(manager: Any, sid: str, portfolio: str | None = None) -> str:
    """The strategy fingerprint of session `sid`'s run (of its portfolio's child run)."""
    run_id = manager.sessions[sid].run_id
    store = manager.store
    if portfolio is not None:
        run_id = next(c.run_id for c in store.children(run_id) if c.portfolio == portfolio)
    return str(store.run(run_id).strategy_fingerprint)


ONE = SESSION | {"portfolios": [{"id": "a", "strategy": "llm_planner",
                                 "params": {"plan_interval": LONG}}]}  # fmt: skip


async def test_a_new_prompt_changes_the_fingerprint_of_the_run(
    tmp_path: Path, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PUT /strategy left the run's fingerprint the one of the prompt it started with:
    a promotion of the run was recorded for a prompt that traded part of it, or none.
    A run that has adopted no plan yet takes the fingerprint of a run started with the
    new prompt; one that planned with the old prompt a fingerprint of neither."""
    async with serving(tmp_path / "server.sqlite") as (client, manager):
        llm.respond = lambda _request: "{not json"  # no plan: nothing traded on it
        quiet = await start(client, ONE)
        await until(lambda: len(llm.requests) == 1, 120, 0.01)
        llm.respond = echo
        planned = await start(client, SESSION)  # its planners adopt a plan at once
        ws = await client.ws_connect(f"/api/sessions/{planned}/stream")
        await read_until(ws, [], running)
        await until(lambda: len(llm.requests) == 3, 120, 0.01)
        started_quiet, started_b = fingerprint(manager, quiet), fingerprint(manager, planned, "b")
        started_a = fingerprint(manager, planned, "a")
        assert started_a == started_quiet  # the same strategy, params and prompt

        body = {"template": "mean_reversion"}
        for sid in (quiet, planned):
            resp = await client.put(f"/api/sessions/{sid}/strategy?portfolio=a", json=body)
            assert resp.status == 200, await resp.text()
        swapped_quiet, swapped_a = fingerprint(manager, quiet), fingerprint(manager, planned, "a")
        assert swapped_quiet != started_quiet
        assert swapped_a not in (started_a, swapped_quiet)
        assert fingerprint(manager, planned, "b") == started_b  # not swapped
        assert fingerprint(manager, planned) == "portfolios"
        resp = await client.put(f"/api/sessions/{quiet}/strategy", json=body)  # the same one
        assert resp.status == 200 and fingerprint(manager, quiet) == swapped_quiet

        monkeypatch.setenv("PERPS_BOT__LLM__TEMPLATE", "mean_reversion")
        began = await start(client, ONE)  # began with the prompt the quiet one swapped to
        await until(lambda: manager.sessions[began].run_id is not None, 120, 0.01)
        assert fingerprint(manager, began) == swapped_quiet
        for sid in (quiet, planned, began):
            assert (await client.post(f"/api/sessions/{sid}/stop")).status == 200
