"""A run's plan history (SPEC 16), read from the run store: the plans the `llm_planner`
adopted (memory namespace `llm_plans`: time, the model's rationale, each trigger with
its own) and the rows of a trade plan file the `plan` strategy executed (namespace
`plan`). The report (table, JSON, HTML) and the session server show it.

Where a strategy's memory lives depends on the run (strategies.base.Memory): per run
for backtests and paper runs without an account (each portfolio's own run; runs made
before that kept all portfolios' under the run), per profile and portfolio otherwise,
where it outlives the run. A plan record names the run that made it, so each run (each
portfolio of a run with several) shows its own; a record from before that names none
and counts only under its run's own scope. Executed plan rows carry no time, so they
are shown only where they are kept per run.
"""

import json
from typing import Any

from perps_bot.domain import DEFAULT_PORTFOLIO, iso_utc
from perps_bot.storage import RunRecord, RunStore
from perps_bot.storage.strategy_memory import remembered

LLM_PLANS = "llm_plans"
PLAN_ROWS = "plan"


def plan_history(store: RunStore, run: RunRecord) -> list[dict[str, Any]]:
    """The plans `run` adopted, oldest first, as plain JSON values."""
    portfolio = run.portfolio or DEFAULT_PORTFOLIO
    scopes = [run.run_id, f"{run.profile}/{portfolio}"]
    if run.parent_run_id is not None:
        scopes.append(run.parent_run_id)  # a portfolio's memory in a paper run, before
    seen: dict[tuple[int, str], dict[str, Any]] = {}
    for scope, key in remembered(store, scopes, LLM_PLANS):
        record = _record(key)
        if record is None or record.get("run", scope) != run.run_id:
            continue
        entry = _entry(record, run.portfolio)
        seen.setdefault((entry["ts"], key), entry)
    return [seen[k] for k in sorted(seen)]


def executed_rows(store: RunStore, run: RunRecord) -> list[str]:
    """The plan file rows `run` executed, sorted: their ids (`r1`), or the content hash
    of a row without one (`sha1:...`)."""
    scopes = [run.run_id]
    if run.parent_run_id is not None:
        scopes.append(run.parent_run_id)  # where a portfolio's were kept before
    return sorted(key.removeprefix("id:") for _, key in remembered(store, scopes, PLAN_ROWS))


def plans_section(store: RunStore, runs: list[RunRecord]) -> dict[str, Any] | None:
    """The report's `plans` section over `runs` (a run, or each portfolio of one), or
    None when none of them planned anything."""
    history = sorted((p for run in runs for p in plan_history(store, run)),
                     key=lambda p: (p["ts"], p["portfolio"] or ""))  # fmt: skip
    rows = sorted({key for run in runs for key in executed_rows(store, run)})
    if not history and not rows:
        return None
    return {"llm": history, "executed_rows": rows}


def condition_text(condition: dict[str, Any]) -> str:
    """`price_above 105`, `price_below 90` or `always`."""
    kind = str(condition.get("kind", "?"))
    level = condition.get("level")
    return kind if kind == "always" or level is None else f"{kind} {level:g}"


def trigger_text(trigger: dict[str, Any]) -> str:
    """One line: `BTC-PERP price_above 105 -> 0.5 (stop 90, take profit 130): why`."""
    levels = [f"{name} {trigger[key]:g}" for key, name in
              (("stop", "stop"), ("take_profit", "take profit")) if trigger.get(key)]  # fmt: skip
    shown = f" ({', '.join(levels)})" if levels else ""
    return (f"{trigger['symbol']} {trigger['condition']} -> {trigger['target_position']:g}"
            f"{shown}: {trigger['rationale']}")  # fmt: skip


def _record(key: str) -> dict[str, Any] | None:
    try:
        record = json.loads(key)
    except ValueError:
        return None
    ok = isinstance(record, dict) and isinstance(record.get("ts"), int)
    return record if ok and isinstance(record.get("plan"), dict) else None


def _entry(record: dict[str, Any], portfolio: str | None) -> dict[str, Any]:
    plan = record["plan"]
    triggers = [
        {"symbol": t.get("symbol"), "condition": condition_text(t.get("condition") or {}),
         "target_position": t.get("target_position"), "stop": t.get("stop"),
         "take_profit": t.get("take_profit"), "rationale": t.get("rationale", "")}
        for t in plan.get("triggers") or [] if isinstance(t, dict)
    ]  # fmt: skip
    return {"ts": record["ts"], "time": iso_utc(record["ts"]), "portfolio": portfolio,
            "rationale": plan.get("rationale", ""), "triggers": triggers}  # fmt: skip
