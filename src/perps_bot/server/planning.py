"""The planner endpoints of the session server (SPEC 16 on SPEC 11): a session's plan
history, a plan asked for now, a new prompt.

They reach the running session the way pause / resume / flatten do: straight to the
strategy object of its portfolio, on the server's event loop, which is the loop the
session's run executes on (the server runs sessions as tasks), so nothing races the
run. Only the request to the model leaves the loop (`LlmPlanner.fetch` in a thread:
a model takes seconds to answer, and every session of the server would wait); the
context is taken before and the answer adopted after, on the loop. A new prompt is
used from the next plan, asked for by the run or here; it is part of the strategy's
checkpoint state, so a session that goes on after a restart keeps it (from its last
checkpoint on).

`?portfolio=ID` picks one portfolio; without it, every llm_planner of the session.
"""

import asyncio
from typing import Any

from perps_bot.domain import PerpsBotError, iso_utc, short
from perps_bot.metrics.plans import plan_history
from perps_bot.orchestrator.portfolio import Portfolio
from perps_bot.orchestrator.wiring import Run
from perps_bot.server import views
from perps_bot.server.requests import RequestError
from perps_bot.server.session import Session
from perps_bot.storage import RunStore
from perps_bot.strategies import strategy_fingerprint
from perps_bot.strategies.llm_plan import TEMPLATES, PlanRefused, prompt_text
from perps_bot.strategies.llm_planner import LlmPlanner, prompt_digest

PROMPT_FIELDS = ("template", "prompt", "prompt_file")
MAX_PROMPT = 20_000
#: why a replan's answer is not adopted when the prompt was changed while the model was
#: asked (its plan is of the old one, and the run's fingerprint already the new one's)
SWAPPED = "the prompt was changed while the model was asked: ask again"


def plans(store: RunStore, s: Session, pid: str | None = None) -> dict[str, Any]:
    """Each portfolio of the session (portfolio `pid`) with the plans its strategy
    adopted, oldest first."""
    return {"session_id": s.id, "portfolios": [
        {"id": p, "strategy": run.strategy, "run_id": run.run_id,
         "plans": plan_history(store, run)}
        for p, run in views.portfolio_runs(store, s) if pid is None or p == pid
    ]}  # fmt: skip


async def replan(s: Session, pid: str | None) -> dict[str, Any]:
    """Ask each planner of the session (of portfolio `pid`) for a plan now; 502 when no
    planner got one (the previous plans stay in force), 409 when a prompt was changed
    while its model was asked (that answer is not adopted)."""
    out: list[dict[str, Any]] = []
    for p, planner in _planners(s, pid):
        assert s.run is not None
        ts = s.run.orchestrator.last_ts or s.run.start_ms
        question = planner.question(ts)
        answer = await asyncio.to_thread(planner.fetch, question)
        if s.run is None:
            raise RequestError(f"session {s.id} ended while the model was asked", status=409)
        s.controllable()  # asked to stop meanwhile: the ending run would not use it
        accepted, reason = False, SWAPPED
        if planner.prompt == question[0]:  # else a plan of the prompt no longer in force
            accepted = _take(planner, ts, answer)
            reason = planner.last_failure
        if accepted:  # checkpointed with this batch: a stop before then lost the plan
            s.save_soon()
        plan = planner.plan.model_dump() if planner.plan is not None else None
        out.append({"portfolio": p.id, "accepted": accepted, "time": iso_utc(ts),
                    "reason": reason or None, "plan": plan})  # fmt: skip
        s.publish({"type": "control", "portfolio": p.id, "data": {"action": "replan",
                   "accepted": accepted, "reason": reason or None}})  # fmt: skip
    if not any(r["accepted"] for r in out):
        reasons = "; ".join(f"{r['portfolio']}: {r['reason']}" for r in out)
        swapped = any(r["reason"] == SWAPPED for r in out)
        raise RequestError(f"no new plan ({reasons}); the previous plan stays in force",
                           409 if swapped else 502)  # fmt: skip
    return {"session_id": s.id, "replans": out}


def _take(planner: LlmPlanner, ts: int, answer: str | PlanRefused) -> bool:
    try:
        return planner.take(ts, answer)
    except PerpsBotError as exc:  # --llm-cache-only and the request is not cached
        raise RequestError(str(exc), status=409) from None


def set_prompt(s: Session, pid: str | None, body: object) -> dict[str, Any]:
    """A new prompt for each planner of the session (of portfolio `pid`)."""
    text, label = parse_prompt(body)
    changed = []
    for p, planner in _planners(s, pid):
        assert s.run is not None
        use_prompt(s.run, p, planner, text, label)
        s.prompts[p.id] = (text, label)
        changed.append(p.id)
        s.publish({"type": "control", "portfolio": p.id,
                   "data": {"action": "strategy", "prompt": label}})  # fmt: skip
    s.save_soon()
    return {"session_id": s.id, "portfolios": changed, "prompt": label,
            "takes_effect": "at the next plan"}  # fmt: skip


def use_prompt(run: Run, p: Portfolio, planner: LlmPlanner, text: str, label: str) -> None:
    """Give `planner` (portfolio `p` of `run`) the prompt `text`, and the run of `p` the
    fingerprint of what it trades (its promotion is for that one): with no plan adopted
    yet, the fingerprint of this prompt (as if it started with it); after plans of
    another prompt, one of both (the one it had, then this one), which no run of one
    prompt has. The run of the prompt it started with kept that one: its promotion was
    then recorded for a prompt that traded only part of it, or none."""
    if text != planner.prompt:
        store, run_id = run.store, p.rec.run_id
        digest = prompt_digest(text)
        if planner.plan is not None:
            digest = f"{store.run(run_id).strategy_fingerprint} then {digest}"
        planned = next(x for x in run.preflight.portfolios if x.plan.id == p.id)
        fingerprint = strategy_fingerprint(
            planned.strategy_cls, planned.plan.params, run.preflight.code_version,
            timeframe=run.settings.strategy.timeframe, llm=run.settings.llm,
            given={"prompt": digest},
        )  # fmt: skip
        store.set_strategy_fingerprint(run_id, fingerprint)
    planner.set_prompt(text, label)


def parse_prompt(body: object) -> tuple[str, str]:
    """(the prompt's text, a label for it) from `{"template"|"prompt"|"prompt_file": ...}`,
    or RequestError naming what is wrong."""
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object")
    unknown = sorted(str(k) for k in body if k not in PROMPT_FIELDS)
    if unknown:
        raise RequestError(
            f"unknown field {short(unknown[0])!r} (known: {', '.join(PROMPT_FIELDS)})"
        )
    given = [k for k in PROMPT_FIELDS if k in body]
    if len(given) != 1:
        raise RequestError(f"give one of {', '.join(PROMPT_FIELDS)} (got {len(given)})")
    (field,) = given
    value = body[field]
    if not isinstance(value, str) or not value.strip():
        raise RequestError(f"{field}: expected a non-empty text")
    if field == "template":
        if value not in TEMPLATES:
            raise RequestError(f"template: unknown template {short(value)!r} (known:"
                               f" {', '.join(TEMPLATES)})")  # fmt: skip
        return prompt_text(value, None), f"template {value}"
    if field == "prompt_file":
        try:
            text = prompt_text("default", value, limit=MAX_PROMPT)
            return text, f"prompt file {short(value)}"
        except PlanRefused as exc:
            raise RequestError(f"prompt_file: {exc}") from None
    if len(value) > MAX_PROMPT:
        raise RequestError(f"prompt: at most {MAX_PROMPT} characters (got {len(value)})")
    return value, "prompt text"


def _planners(s: Session, pid: str | None) -> list[tuple[Portfolio, LlmPlanner]]:
    """The running planners asked for (403 read-only, 409 not running, stopping or no
    planner, 404 unknown portfolio)."""
    chosen = [s.portfolio(pid)] if pid is not None else _running(s)
    found = [(p, p.strategy) for p in chosen if isinstance(p.strategy, LlmPlanner)]
    if not found:
        strategies = ", ".join(f"{p.id}: {p.strategy.name}" for p in chosen)
        raise RequestError(f"session {s.id} has no llm_planner to ask ({strategies})", 409)
    return found


def _running(s: Session) -> list[Portfolio]:
    return list(s.controllable().orchestrator.portfolios)
