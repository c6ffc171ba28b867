"""Layered settings: built-in defaults < profile YAML < environment < CLI flags.

freqtrade's layering, on pydantic-settings: the profile file is a settings
source, `PERPS_BOT__SECTION__KEY` variables are the environment source, and CLI
flags arrive as init arguments (highest precedence). Sources are deep-merged,
so `--param fast=5` changes one strategy parameter and keeps the others.
"""

import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from perps_bot.config.models import (
    AccountConfig,
    BrokerConfig,
    ExchangeConfig,
    FeesConfig,
    LoggingConfig,
    MockConfig,
    PromotionConfig,
    RiskConfig,
    RunConfig,
    StrategyConfig,
)
from perps_bot.domain import PerpsBotError

PROFILES_DIR = Path("config/profiles")


class ConfigError(PerpsBotError):
    """A profile, environment variable or flag that cannot be used; the message is one line."""


class _ProfileFileSource(PydanticBaseSettingsSource):
    """Reads the profile YAML chosen for this load (set by load_settings)."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class Settings(BaseSettings):
    """The whole validated configuration of one run."""

    model_config = SettingsConfigDict(
        env_prefix="PERPS_BOT__",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        case_sensitive=False,
        nested_model_default_partial_update=True,
    )

    profile: str = "dev"
    run: RunConfig = Field(default_factory=RunConfig)
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    exchange: ExchangeConfig = Field(default_factory=ExchangeConfig)
    mock: MockConfig = Field(default_factory=MockConfig)
    fees: FeesConfig = Field(default_factory=FeesConfig)
    account: AccountConfig = Field(default_factory=AccountConfig)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    _profile_data: ClassVar[dict[str, Any]] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _ProfileFileSource(settings_cls, cls._profile_data))

    @property
    def is_live(self) -> bool:
        """True when real orders reach an exchange (ccxt broker without dry run)."""
        return self.broker.kind == "ccxt" and not self.run.dry_run

    @property
    def run_kind(self) -> str:
        """dev | dry_run | live: what the run's evidence is worth for promotion."""
        if self.broker.kind == "mock":
            return "dev"
        return "dry_run" if self.run.dry_run else "live"

    @property
    def database_path(self) -> Path:
        if self.run.database:
            return Path(self.run.database)
        return Path(self.run.data_dir) / f"perps_bot.{self.profile}.sqlite"

    def masked_dict(self) -> dict[str, Any]:
        """The merged config as plain data, secrets replaced by '********'."""
        data: dict[str, Any] = self.model_dump(mode="json")
        for key in ("api_key", "api_secret"):
            if data["exchange"].get(key):
                data["exchange"][key] = "********"
        return data

    def config_hash(self) -> str:
        """A stable hash of everything that changes trading behaviour (secrets excluded)."""
        data = self.masked_dict()
        data["run"] = {k: v for k, v in data["run"].items() if k not in ("live_view", "log_level")}
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def profile_path(profile: str, profiles_dir: Path | None = None) -> Path:
    base = profiles_dir if profiles_dir is not None else PROFILES_DIR
    candidate = Path(profile)
    if candidate.suffix in (".yaml", ".yml") and candidate.exists():
        return candidate
    return base / f"{profile}.yaml"


def read_profile(profile: str, profiles_dir: Path | None = None) -> dict[str, Any]:
    path = profile_path(profile, profiles_dir)
    if not path.exists():
        known = sorted(p.stem for p in path.parent.glob("*.yaml")) if path.parent.exists() else []
        hint = f" (known: {', '.join(known)})" if known else ""
        raise ConfigError(f"profile {profile!r} not found at {path}{hint}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"profile {path}{where}: invalid YAML") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"profile {path}: top level must be a mapping of sections")
    data.setdefault("profile", Path(profile).stem)
    return data


def load_settings(
    profile: str = "dev",
    overrides: dict[str, Any] | None = None,
    profiles_dir: Path | None = None,
) -> Settings:
    """Load and validate a profile; raise ConfigError with a one-line message on any error."""
    data = read_profile(profile, profiles_dir)
    Settings._profile_data = data
    try:
        return Settings(**(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from exc
    finally:
        Settings._profile_data = {}


def describe_validation_error(exc: ValidationError) -> str:
    """The first error as `path.to.key: message (got value)`, plus how many more there are."""
    errors = exc.errors()
    first = errors[0]
    path = ".".join(str(p) for p in first["loc"]) or "config"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    got = first.get("input")
    shown = "" if first["type"] == "extra_forbidden" or isinstance(got, dict) else f" (got {got!r})"
    more = f" [+{len(errors) - 1} more]" if len(errors) > 1 else ""
    return f"config error: {path}: {msg}{shown}{more}"
