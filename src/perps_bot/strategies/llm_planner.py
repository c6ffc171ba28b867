"""The built-in `llm_planner` strategy (SPEC 16): every `plan_interval` of market time it
asks an OpenAI-compatible chat-completions endpoint for a plan (strategies.llm_plan has
the schema, the client and the cache) and runs it until the next one.

* Context sent: per symbol the last `bars` closes, their mean and the change over them,
  the position; the account's equity; the previous plan. Nothing from the wall clock, so
  the same data gives the same request (and a cached answer).
* A plan is a list of triggers: when a trigger's condition on its symbol's price holds,
  the symbol's position becomes its `target_position`, with its stop and take-profit as
  protective orders; each trigger acts once per plan. The risk gate bounds everything.
* A failed or invalid answer is one warning line with the reason; the previous plan stays
  in force. With `cache_only`, a request not in the cache stops the run (one line).
* Every accepted plan, with the model's rationale and each trigger's, is stored in the run
  store next to the trades (memory namespace `llm_plans`) and logged; the entries it makes
  carry the trigger's rationale as their reason.
"""

import json
import os
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from perps_bot.domain import Candle, MarketEvent, Quote, Signal, TargetPosition
from perps_bot.domain.timeutil import iso_utc, parse_duration
from perps_bot.strategies.base import NO_SIGNALS, Strategy, StrategyContext, StrategyError
from perps_bot.strategies.llm_plan import (
    TEMPLATES,
    Plan,
    PlanClient,
    PlanRefused,
    parse_plan,
    prompt_text,
)

API_KEY_VARIABLE = "PERPS_BOT__LLM__API_KEY"


class LlmPlannerParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field("http://127.0.0.1:8000/v1", description="OpenAI-compatible endpoint")
    model: str = Field("gpt-4o-mini", description="the model to ask")
    plan_interval: str = Field("4h", description="market time between plans")
    template: str = Field("default", description=f"prompt template ({', '.join(TEMPLATES)})")
    prompt_file: str | None = Field(None, description="a custom prompt file (instead)")
    timeout: float = Field(30.0, gt=0, description="seconds to wait for an answer")
    bars: int = Field(30, ge=2, le=500, description="closes per symbol in the context")
    cache_dir: str = Field("data/llm_cache", description="answers cached by request hash")
    cache_only: bool = Field(False, description="never call the endpoint (fail on a miss)")

    @field_validator("plan_interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        if parse_duration(value) <= 0:
            raise ValueError("must be a positive duration, e.g. 4h")
        return value

    @field_validator("template")
    @classmethod
    def _template(cls, value: str) -> str:
        if value not in TEMPLATES:
            raise ValueError(f"unknown template (known: {', '.join(TEMPLATES)})")
        return value


class LlmPlanner(Strategy):
    name = "llm_planner"
    Params = LlmPlannerParams
    params: LlmPlannerParams

    def __init__(self, params: Mapping[str, Any], ctx: StrategyContext) -> None:
        super().__init__(params, ctx)
        p = self.params
        try:
            self._system = prompt_text(p.template, p.prompt_file)
        except PlanRefused as exc:
            raise StrategyError(f"strategy 'llm_planner': {exc}") from None
        self._client = PlanClient(
            base_url=p.base_url, model=p.model, api_key=os.environ.get(API_KEY_VARIABLE, ""),
            timeout=p.timeout, cache_dir=Path(p.cache_dir), cache_only=p.cache_only,
        )  # fmt: skip
        self._every = parse_duration(p.plan_interval)
        self._closes: dict[str, deque[float]] = {s: deque(maxlen=p.bars) for s in ctx.symbols}
        self._next_plan: int | None = None
        self.plan: Plan | None = None
        self._fired: set[int] = set()
        #: why the last replan failed ("" after a good one)
        self.last_failure = ""

    def on_event(self, event: MarketEvent) -> Sequence[Signal]:
        if isinstance(event, Candle):
            price: float | None = event.close
        elif isinstance(event, Quote):
            price = event.last
        else:
            return NO_SIGNALS
        closes = self._closes.get(event.symbol)
        if closes is None or not price:
            return NO_SIGNALS
        closes.append(price)
        if self._next_plan is None or event.ts >= self._next_plan:
            self._next_plan = event.ts + self._every
            self.replan(event.ts)
        return self._triggered(event.symbol, price)

    def replan(self, ts: int) -> bool:
        """Ask for a new plan now; False (and the previous plan kept) when none came."""
        try:
            answer = self._client.ask(self._system, self._context(ts))
            plan = parse_plan(answer, set(self.ctx.symbols))
        except PlanRefused as exc:
            if self.params.cache_only and "--llm-cache-only" in str(exc):
                raise StrategyError(f"strategy 'llm_planner': {exc}") from None
            self.last_failure = str(exc)
            self.ctx.logger.warning("llm planner: no new plan at %s (%s); the previous plan"
                                    " stays in force", iso_utc(ts), exc)  # fmt: skip
            return False
        self.plan, self._fired, self.last_failure = plan, set(), ""
        record = json.dumps({"ts": ts, "plan": plan.model_dump()}, sort_keys=True)
        if self.ctx.memory is not None:
            self.ctx.memory.remember("llm_plans", record)
        self.ctx.logger.info("llm planner: new plan at %s: %s", iso_utc(ts), plan.rationale)
        return True

    def _triggered(self, symbol: str, price: float) -> Sequence[Signal]:
        plan = self.plan
        if plan is None:
            return NO_SIGNALS
        signals: list[Signal] = []
        for index, trigger in enumerate(plan.triggers):
            if trigger.symbol != symbol or index in self._fired or not trigger.holds(price):
                continue
            self._fired.add(index)
            signals.append(TargetPosition(
                symbol, trigger.target_position, reason=f"llm: {trigger.rationale[:80]}",
                stop_loss=trigger.stop, take_profit=trigger.take_profit,
            ))  # fmt: skip
        return signals or NO_SIGNALS

    def _context(self, ts: int) -> dict[str, Any]:
        symbols: dict[str, Any] = {}
        for symbol, closes in self._closes.items():
            values = list(closes)
            if not values:
                continue
            symbols[symbol] = {
                "closes": [round(v, 8) for v in values],
                "mean": round(sum(values) / len(values), 8),
                "change_pct": round((values[-1] / values[0] - 1) * 100, 4),
                "position": self.ctx.account.position_size(symbol),
            }
        previous = self.plan.model_dump() if self.plan is not None else None
        equity = round(self.ctx.account.equity(), 2)
        return {"time": iso_utc(ts), "symbols": symbols, "equity": equity,
                "previous_plan": previous}  # fmt: skip

    def state(self) -> object:
        return ({s: list(c) for s, c in self._closes.items()}, self._next_plan,
                self.plan.model_dump() if self.plan else None, sorted(self._fired))  # fmt: skip

    def restore(self, state: object) -> None:
        assert isinstance(state, tuple)
        closes, self._next_plan, plan, fired = state
        for symbol, values in closes.items():
            self._closes[symbol].extend(values)
        self.plan = Plan.model_validate(plan) if plan is not None else None
        self._fired = set(fired)
