"""The LLM planner's plan (SPEC 16): the strict JSON schema a model must answer in, the
request to an OpenAI-compatible chat-completions endpoint, and the answer cache.

Answers are cached under `cache_dir` by the SHA-256 of their request (model, messages),
so a second backtest over the same data asks nothing and trades the same; with
`cache_only` a miss is a `PlanRefused` instead of a call. An entry is written whole or
not at all; a damaged one (edited, or from an older version) is a miss. An answer that
is not JSON or breaks the schema, a timeout, a refusal (429, 5xx) or a connection error
is a `PlanRefused` with a one-line reason: the caller keeps the previous plan.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from perps_bot.domain import short, short_path

log = logging.getLogger("perps_bot.strategy.llm_planner")

if TYPE_CHECKING:  # the client library is heavy (hundreds of models, a second at start-up):
    # imported when a planner asks, not by every command that loads the strategies
    from openai.types.chat import ChatCompletionMessageParam

PROMPTS = Path(__file__).with_name("prompts")
TEMPLATES = tuple(sorted(p.stem for p in PROMPTS.glob("*.txt")))


class PlanRefused(Exception):
    """No usable plan from the model (one-line reason)."""


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["price_above", "price_below", "always"]
    level: float | None = Field(None, gt=0, allow_inf_nan=False)


class Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str
    condition: Condition
    target_position: float = Field(allow_inf_nan=False)
    stop: float | None = Field(None, gt=0, allow_inf_nan=False)
    take_profit: float | None = Field(None, gt=0, allow_inf_nan=False)
    rationale: str = Field(max_length=500)

    @model_validator(mode="after")
    def _levels_around(self) -> Trigger:
        """A long's stop below its take-profit, a short's above: the other way round
        one of them is passed at once (an exit as soon as the entry fills)."""
        stop, take_profit, target = self.stop, self.take_profit, self.target_position
        # (a flat target protects nothing: its levels are never used)
        if stop is not None and take_profit is not None and target * (take_profit - stop) < 0:
            side, where = ("long", "below") if target > 0 else ("short", "above")
            raise ValueError(f"a {side} stop must be {where} its take_profit")
        if target != 0 and stop is not None and stop == take_profit:
            raise ValueError("stop and take_profit are one price")
        return self

    def holds(self, price: float) -> bool:
        level = self.condition.level
        if self.condition.kind == "always" or level is None:
            return True
        return price > level if self.condition.kind == "price_above" else price < level


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rationale: str = Field(max_length=2000)
    triggers: list[Trigger] = Field(max_length=20)


SCHEMA_TEXT = json.dumps(Plan.model_json_schema(), separators=(",", ":"))


def prompt_text(template: str, prompt_file: str | None, *, limit: int | None = None) -> str:
    """The system prompt: a custom file, or one of the built-in templates. PlanRefused
    for a file that cannot be read, is no UTF-8 text or holds more than `limit`
    characters; a FIFO or a device is refused before it is opened: reading one blocks
    or never ends (/dev/zero), on the event loop that runs every session of a server."""
    path = Path(prompt_file) if prompt_file else PROMPTS / f"{template}.txt"
    where = f"prompt {short_path(path)}"
    if path.exists() and not path.is_file():
        raise PlanRefused(f"{where}: not a regular file")
    try:
        with path.open(encoding="utf-8") as f:
            text = f.read(-1 if limit is None else limit + 1)
    except UnicodeDecodeError:
        raise PlanRefused(f"{where}: not UTF-8 text") from None
    except (OSError, ValueError):  # ValueError: a NUL in the path
        raise PlanRefused(f"{where}: cannot read it") from None
    if limit is not None and len(text) > limit:
        raise PlanRefused(f"{where}: at most {limit} characters")
    return text


def parse_plan(text: str | None, symbols: set[str]) -> Plan:
    if not text:
        raise PlanRefused("empty answer")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PlanRefused(f"answer is not JSON ({short(str(exc))})") from None
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "plan"
        raise PlanRefused(f"answer breaks the schema at {where}: {first['msg']}") from None
    unknown = [t.symbol for t in plan.triggers if t.symbol not in symbols]
    if unknown:
        raise PlanRefused(f"answer names a symbol this run does not trade: {short(unknown[0])}")
    return plan


def _cached(path: Path) -> str | None:
    """The answer cached at `path`; None when there is none or the entry is damaged (cut
    short, not JSON, no answer in it): a miss, asked again and written anew."""
    if not path.is_file():
        return None
    try:
        answer = json.loads(path.read_text(encoding="utf-8")).get("answer")
    except (OSError, ValueError, AttributeError):  # UnicodeDecodeError is a ValueError
        return None
    return answer if isinstance(answer, str) else None


def _store(path: Path, entry: str) -> None:
    """Cache `entry` at `path`: whole or not at all (a kill mid-write), through a
    temporary file of its own (a session's replan may write the same entry from another
    thread). A cache that cannot be written is one warning: the answer is used anyway."""
    partial: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(suffix=".tmp", dir=path.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(entry)
        os.replace(partial, path)
    except OSError as exc:
        log.warning("llm planner: answer not cached, cannot write %s (%s)",
                    short(str(path.parent)), exc.strerror or type(exc).__name__)  # fmt: skip
        if partial is not None:
            with contextlib.suppress(OSError):
                os.unlink(partial)


class PlanClient:
    """Asks the endpoint for a plan (through the cache)."""

    def __init__(
        self, *, base_url: str, model: str, api_key: str, timeout: float,
        cache_dir: Path, cache_only: bool,
    ) -> None:  # fmt: skip
        self.model = model
        self.cache_dir = cache_dir
        self.cache_only = cache_only
        import openai

        self._client = openai.OpenAI(
            base_url=base_url, api_key=api_key or "none", timeout=timeout, max_retries=0
        )

    def ask(self, system: str, context: dict[str, Any]) -> str:
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": f"{system}\nAnswer with JSON only, in this"
             f" schema: {SCHEMA_TEXT}"},
            {"role": "user", "content": json.dumps(context, sort_keys=True)},
        ]  # fmt: skip
        request = {"model": self.model, "messages": messages}
        key = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
        cached = self.cache_dir / f"{key}.json"
        answer = _cached(cached)
        if answer is not None:
            return answer
        if self.cache_only:
            raise PlanRefused(f"--llm-cache-only: no cached answer for request {key[:12]}")
        answer = self._call(messages)
        _store(cached, json.dumps({"request": request, "answer": answer}))
        return answer

    def _call(self, messages: list[ChatCompletionMessageParam]) -> str:
        import openai

        try:
            reply = self._client.chat.completions.create(
                model=self.model,
                messages=messages,
                response_format={"type": "json_object"},
            )
        except openai.APITimeoutError:
            raise PlanRefused("the model did not answer in time") from None
        except openai.APIStatusError as exc:
            raise PlanRefused(f"the endpoint refused: HTTP {exc.status_code}") from None
        except openai.APIError as exc:
            raise PlanRefused(f"the endpoint failed: {short(str(exc))}") from None
        choices = getattr(reply, "choices", None) or []
        if not choices:
            raise PlanRefused("answer has no choices")
        return choices[0].message.content or ""
