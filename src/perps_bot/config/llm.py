"""The `llm:` section (SPEC 16): the OpenAI-compatible endpoint the `llm_planner` asks,
which model, how often, with what prompt, and where its answers are cached.

It is the planner's set of defaults: a strategy param of the same name (`--param
model=...`) still wins for its portfolio, so a profile can name the endpoint once for
every planner it runs. The key is a secret: it comes only from the environment
(`PERPS_BOT__LLM__API_KEY`; a profile that holds one is refused), is a `SecretStr`, and
`config show` prints it masked. `cache_only` (`--llm-cache-only`) and `cache_dir` say how
the run gets its answers, not what it trades: they stay out of the config hash.
"""

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator

from perps_bot.config.models import PositiveFloat, Section
from perps_bot.domain import parse_duration

API_KEY_VARIABLE = "PERPS_BOT__LLM__API_KEY"
MASK = "********"
#: keys of the section that do not change what a run trades (out of the config hash)
NOT_TRADING_KEYS = frozenset({"api_key", "cache_dir", "cache_only"})
#: where the answers go when `cache_dir` is not set: under the run's data directory
CACHE_FOLDER = "llm_cache"


class LlmConfig(Section):
    """The llm_planner's endpoint, model, cadence and prompt (see the module doc)."""

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "gpt-4o-mini"
    plan_interval: str = "4h"
    template: str = "default"
    prompt_file: str | None = None
    timeout: PositiveFloat = 30.0
    cache_dir: str | None = None  # None: <run.data_dir>/llm_cache
    cache_only: bool = False
    api_key: SecretStr | None = Field(default=None, description=f"only from {API_KEY_VARIABLE}")

    @field_validator("plan_interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        if parse_duration(value) <= 0:
            raise ValueError("must be a positive duration, e.g. 4h")
        return value

    def for_run(self, data_dir: str) -> "LlmConfig":
        """The section with its cache folder decided: `cache_dir`, else under `data_dir`."""
        if self.cache_dir:
            return self
        return self.model_copy(update={"cache_dir": str(Path(data_dir) / CACHE_FOLDER)})

    def key(self) -> str:
        return self.api_key.get_secret_value() if self.api_key is not None else ""

    def masked(self) -> dict[str, Any]:
        """As plain data, the key replaced by a mask (when there is one)."""
        data: dict[str, Any] = self.model_dump(mode="json")
        data["api_key"] = MASK if self.api_key is not None else None
        return data
