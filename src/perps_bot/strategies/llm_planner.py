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
  carry the trigger's rationale as their reason; the record names the run it came from
  (the memory of a run that trades an account outlives the run).
* Endpoint, model, cadence, prompt, timeout and cache come from the profile's `llm:`
  section (config.llm; the key from PERPS_BOT__LLM__API_KEY); a param of the same name
  wins. The session server may ask for a plan out of turn (`question` and `take` on the
  run's loop, `fetch` in a thread) and change the prompt (`set_prompt`, kept in `state`).
"""

import hashlib
import json
import os
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from perps_bot.config.llm import API_KEY_VARIABLE, LlmConfig
from perps_bot.config.models import RunConfig
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

__all__ = ["API_KEY_VARIABLE", "LlmPlanner", "LlmPlannerParams"]
_FROM = "default: the llm: section's"


class LlmPlannerParams(BaseModel):
    """Each param left out comes from the profile's `llm:` section (config.llm)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = Field(None, description=f"OpenAI-compatible endpoint ({_FROM})")
    model: str | None = Field(None, description=f"the model to ask ({_FROM})")
    plan_interval: str | None = Field(None, description=f"market time between plans ({_FROM})")
    template: str | None = Field(None, description=f"prompt template: {', '.join(TEMPLATES)}"
                                 f" ({_FROM})")  # fmt: skip
    prompt_file: str | None = Field(None, description=f"a custom prompt file instead ({_FROM})")
    timeout: float | None = Field(None, gt=0, description=f"seconds to wait ({_FROM})")
    bars: int = Field(30, ge=2, le=500, description="closes per symbol in the context")
    cache_dir: str | None = Field(None, description="answers cached by request hash (default:"
                                  " llm.cache_dir, else <run.data_dir>/llm_cache)")  # fmt: skip
    cache_only: bool = Field(False, description="never call the endpoint (also --llm-cache-only)")

    @field_validator("plan_interval")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value) <= 0:
            raise ValueError("must be a positive duration, e.g. 4h")
        return value

    @field_validator("template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            check_template(value)
        return value


def check_template(name: str) -> str:
    """`name` if it is a built-in template; ValueError listing them otherwise."""
    if name not in TEMPLATES:
        raise ValueError(f"unknown template (known: {', '.join(TEMPLATES)})")
    return name


def effective_settings(params: LlmPlannerParams, section: LlmConfig | None) -> LlmConfig:
    """The `llm:` section with the params given on top (cache-only if either says so)."""
    base = section if section is not None else LlmConfig()
    given = {k: v for k, v in params.model_dump().items()
             if k in LlmConfig.model_fields and v is not None and k != "cache_only"}  # fmt: skip
    if params.template is not None and params.prompt_file is None:
        given["prompt_file"] = None  # a template given here beats the section's prompt file
    merged = base.model_copy(update=given | {"cache_only": params.cache_only or base.cache_only})
    return merged.for_run(RunConfig().data_dir)  # outside a run: the default data folder


def prompt_digest(text: str) -> str:
    """A prompt as its fingerprint holds it."""
    return hashlib.sha256(text.encode()).hexdigest()


def _system_prompt(settings: LlmConfig) -> str:
    """The prompt `settings` name (a file, or a built-in template); StrategyError."""
    try:
        return prompt_text(check_template(settings.template), settings.prompt_file)
    except (PlanRefused, ValueError) as exc:
        raise StrategyError(f"strategy 'llm_planner': {exc}") from None


class LlmPlanner(Strategy):
    name = "llm_planner"
    Params = LlmPlannerParams
    params: LlmPlannerParams

    @classmethod
    def section_inputs(cls, params: BaseModel, llm: LlmConfig) -> dict[str, str]:
        """The model, the cadence and the prompt's text (the llm: section's, or the
        params' that win over it): an edited prompt needs a promotion of its own (its
        path alone kept the promotion), and so does another model."""
        assert isinstance(params, LlmPlannerParams)
        settings = effective_settings(params, llm)
        try:
            digest = prompt_digest(prompt_text(check_template(settings.template),
                                               settings.prompt_file))  # fmt: skip
        except (PlanRefused, ValueError):
            digest = "unreadable"  # refused when the strategy starts (exit 2)
        return {"model": settings.model, "plan_interval": settings.plan_interval,
                "prompt": digest}  # fmt: skip

    @classmethod
    def check(cls, params: BaseModel, llm: LlmConfig) -> None:
        """The prompt reads: the params' prompt_file or template, else the llm: section's
        (the session server's 400; the constructor refuses the same)."""
        assert isinstance(params, LlmPlannerParams)
        _system_prompt(effective_settings(params, llm))

    def __init__(self, params: Mapping[str, Any], ctx: StrategyContext) -> None:
        super().__init__(params, ctx)
        p = self.params
        llm = self.settings = effective_settings(p, ctx.llm)
        self._system = _system_prompt(llm)
        assert llm.cache_dir is not None
        self._client = PlanClient(
            base_url=llm.base_url, model=llm.model, timeout=llm.timeout,
            api_key=llm.key() or os.environ.get(API_KEY_VARIABLE, ""),
            cache_dir=Path(llm.cache_dir), cache_only=llm.cache_only,
        )  # fmt: skip
        self._every = parse_duration(llm.plan_interval)
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

    # -- asking for a plan: question (on the run's loop), fetch (anywhere), take (loop) --
    def replan(self, ts: int) -> bool:
        """Ask for a new plan now; False (and the previous plan kept) when none came."""
        return self.take(ts, self.fetch(self.question(ts)))

    def question(self, ts: int) -> tuple[str, dict[str, Any]]:
        """The system prompt and the context of a request at `ts`."""
        return self._system, self._context(ts)

    def fetch(self, question: tuple[str, dict[str, Any]]) -> str | PlanRefused:
        """The model's answer (through the cache), or why there is none. It touches only
        the client and the cache, so a session may run it in a thread (the server's
        replan) while the run goes on."""
        try:
            return self._client.ask(*question)
        except PlanRefused as exc:
            return exc

    def take(self, ts: int, answer: str | PlanRefused) -> bool:
        """Adopt the plan in `answer` (stored, logged); else keep the previous one."""
        try:
            if isinstance(answer, PlanRefused):
                raise answer
            plan = parse_plan(answer, set(self.ctx.symbols))
        except PlanRefused as exc:
            if self.settings.cache_only and "--llm-cache-only" in str(exc):
                raise StrategyError(f"strategy 'llm_planner': {exc}") from None
            self.last_failure = str(exc)
            self.ctx.logger.warning("llm planner: no new plan at %s (%s); the previous plan"
                                    " stays in force", iso_utc(ts), exc)  # fmt: skip
            return False
        self.plan, self._fired, self.last_failure = plan, set(), ""
        record = {"ts": ts, "plan": plan.model_dump()}
        if self.ctx.run_id is not None:
            record["run"] = self.ctx.run_id
        if self.ctx.memory is not None:
            self.ctx.memory.remember("llm_plans", json.dumps(record, sort_keys=True))
        self.ctx.logger.info("llm planner: new plan at %s: %s", iso_utc(ts), plan.rationale)
        return True

    @property
    def prompt(self) -> str:
        """The system prompt of the next plan."""
        return self._system

    def set_prompt(self, text: str, label: str) -> None:
        """A new system prompt (`label` says which, for the log): used from the next plan."""
        self._system = text
        self.ctx.logger.info("llm planner: new prompt (%s), used from the next plan", label)

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
                self.plan.model_dump() if self.plan else None, sorted(self._fired),
                self._system)  # fmt: skip

    def restore(self, state: object) -> None:
        assert isinstance(state, tuple)
        closes, self._next_plan, plan, fired, *prompt = state  # checkpoints before: no prompt
        for symbol, values in closes.items():
            self._closes[symbol].extend(values)
        self.plan = Plan.model_validate(plan) if plan is not None else None
        self._fired = set(fired)
        if prompt:
            self._system = prompt[0]
