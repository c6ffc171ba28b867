"""Layered settings: built-in defaults < profile YAML < environment < CLI flags.

freqtrade's layering, on pydantic-settings: the profile file is a settings
source, `PERPS_BOT__SECTION__KEY` variables are the environment source, and CLI
flags arrive as init arguments (highest precedence). Sources are deep-merged,
so `--param fast=5` changes one strategy parameter and keeps the others. Which file
a profile is, and how it is read: config.profile_files; how a refusal is told:
config.errors.
"""

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, get_origin

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from perps_bot.config.alerts import AlertsConfig
from perps_bot.config.canary import canary_caps_refusal
from perps_bot.config.environment import env_strategy_name, refuse_environment
from perps_bot.config.errors import ConfigError, describe_env_error, describe_validation_error
from perps_bot.config.instrument_config import InstrumentConfig
from perps_bot.config.llm import NOT_TRADING_KEYS, LlmConfig
from perps_bot.config.models import (
    AccountConfig,
    BrokerConfig,
    ExchangeConfig,
    FeesConfig,
    LoggingConfig,
    MockConfig,
    PortfolioConfig,
    PromotionConfig,
    RiskConfig,
    RunConfig,
    StrategyConfig,
)
from perps_bot.config.names import ProfileName
from perps_bot.config.portfolios import PortfolioPlan, plan_portfolios, traded_symbols
from perps_bot.config.profile_files import read_profile
from perps_bot.config.secrets import holds_secret, is_model, refuse_profile_secret, secret_paths
from perps_bot.domain import RunMode, short

#: sections that change what a run tells, not what it trades: out of the config hash,
#: and a resumed run may change them
NOT_TRADING_SECTIONS = frozenset({"alerts"})
#: `run:` settings that change where the run writes or what it shows, not what it trades:
#: out of the config hash (the same backtest into another database or folder reports the
#: same bytes), and a resumed run may change them
NOT_TRADING_RUN_KEYS = frozenset(
    {"log_dir", "data_dir", "database", "http_port", "live_view", "log_level"}
)


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

    profile: ProfileName = "dev"
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
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    llm: LlmConfig = Field(default_factory=LlmConfig)
    # Profile additions to the built-in instrument data (perps_bot.instruments).
    instruments: dict[str, InstrumentConfig] = Field(default_factory=dict)
    # Several strategies side by side, each its own portfolio (SPEC 10); empty: the
    # `strategy:` section is the run's one portfolio.
    portfolios: list[PortfolioConfig] = Field(default_factory=list)

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

    @model_validator(mode="after")
    def _mode_fits_the_broker(self) -> "Settings":
        """The mode checks, made once when the settings are built (SPEC 8)."""
        if self.run.mode in (RunMode.BACKTEST, RunMode.REPLAY, RunMode.WALKFORWARD):
            return self  # the command supplies feed and venue; the broker is not used
        if self.run.mode is not None:
            raise ValueError(f"run.mode {self.run.mode} is set by its command, not by profiles")
        if self.run.dev_fast and self.broker.kind != "mock":
            raise ValueError(
                f"--dev-fast needs the mock broker; this profile uses {self.broker.kind}"
            )
        if self.run.dry_run and self.broker.kind != "ccxt":
            raise ValueError(
                f"--dry-run needs the ccxt broker; this profile uses {self.broker.kind}"
            )
        if self.is_live and self.run.record == "metrics":  # no store, no locks (SPEC 9)
            raise ValueError("run.record: a live run keeps its orders and state: use 'full'")
        return self

    @model_validator(mode="after")
    def _canary_caps(self) -> "Settings":
        """SPEC 1: the canary's hard caps, whatever a variable or flag says (its `risk:`
        caps the whole account, every portfolio's positions together)."""
        refused = canary_caps_refusal(
            self.profile, self.risk, self.account, real_orders=self.is_live
        )
        if refused is not None:
            raise ValueError(refused)
        return self

    @model_validator(mode="after")
    def _portfolios_can_run(self) -> "Settings":
        plan_portfolios(self)  # raises ValueError naming what cannot run
        return self

    def portfolio_plans(self) -> list[PortfolioPlan]:
        """The run's portfolios (config.portfolios)."""
        return plan_portfolios(self)

    @property
    def symbols(self) -> list[str]:
        """Every symbol the run trades (what the feed serves)."""
        return traded_symbols(plan_portfolios(self))

    @property
    def mode(self) -> RunMode:
        """The run mode, from the command, the broker and --dry-run (one decision)."""
        if self.run.mode is not None:
            return self.run.mode
        if self.broker.kind == "mock":
            return RunMode.DEV
        return RunMode.DRY_RUN if self.run.dry_run else RunMode.LIVE

    @property
    def is_live(self) -> bool:
        """True when real orders reach an exchange."""
        return self.mode is RunMode.LIVE

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
        data["alerts"]["urls"] = self.alerts.masked()
        data["llm"] = self.llm.masked()
        return data

    def config_hash(self) -> str:
        """A stable hash of everything that changes trading behaviour (secrets excluded)."""
        data = trading_settings(self.masked_dict())
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def trading_settings(masked: Mapping[str, Any]) -> dict[str, Any]:
    """A masked config (`Settings.masked_dict`, or one stored with a run) less what
    changes where a run writes or what it tells, not what it trades: what the config hash
    covers, and what a resumed run may not change."""
    data = {k: v for k, v in masked.items() if k not in NOT_TRADING_SECTIONS}
    for section, kept_out in (("run", NOT_TRADING_RUN_KEYS), ("llm", NOT_TRADING_KEYS)):
        values = data.get(section)
        if isinstance(values, dict):
            data[section] = {k: v for k, v in values.items() if k not in kept_out}
    return data


def load_settings(
    profile: str = "dev",
    overrides: dict[str, Any] | None = None,
    profiles_dir: Path | None = None,
) -> Settings:
    """Load and validate a profile; raise ConfigError with a one-line message on any error.

    The profile's strategy params belong to the profile's strategy: when the overrides
    name another strategy, they are left out (they would not fit it).
    """
    refused = refuse_environment(Settings.model_fields)
    if refused is not None:
        raise ConfigError(refused)
    data = read_profile(profile, profiles_dir)
    _check_sections(data)
    refused = refuse_profile_secret(data)
    if refused is not None:
        raise ConfigError(refused)
    overrides = dict(overrides or {})
    data = _with_portfolio_params(data, overrides)
    data = _without_foreign_params(data, overrides)
    Settings._profile_data = data
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, _SECRETS)) from exc
    except SettingsError as exc:  # an environment variable that is not valid JSON
        raise ConfigError(describe_env_error(exc)) from exc
    finally:
        Settings._profile_data = {}


def _check_sections(data: dict[str, Any]) -> None:
    """A section is a mapping (`portfolios:` a list). The sources are deep-merged, so a
    flag or PERPS_BOT__ variable for a key of a section written as `run: 5` would
    replace it silently instead of the section being refused."""
    for name, value in data.items():
        field = Settings.model_fields.get(name)
        if field is None or value is None:
            continue
        kind = field.annotation
        want = list if get_origin(kind) is list else dict
        if (get_origin(kind) in (dict, list) or is_model(kind)) and not isinstance(value, want):
            shape = "a list" if want is list else "a mapping of keys"
            got = "" if holds_secret(_SECRETS, (name,)) else f" (got {short(repr(value))})"
            raise ConfigError(f"config error: {short(name)}: must be {shape}{got}")


def _with_portfolio_params(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`--param ID.key=value` into the profile's portfolio `ID` (overrides: `portfolio_params`,
    taken out); unscoped `--param` on a profile of several portfolios is refused."""
    scoped: dict[str, dict[str, Any]] = overrides.pop("portfolio_params", None) or {}
    listed = data.get("portfolios") if "portfolios" not in overrides else None
    if not isinstance(listed, list) or not listed:
        if scoped:
            raise ConfigError(f"bad --param {short(next(iter(scoped)))}.…: this profile has no"
                              " portfolios (--param key=value)")  # fmt: skip
        return data
    ids = [str(p.get("id")) for p in listed if isinstance(p, dict)]
    if (overrides.get("strategy") or {}).get("params"):
        raise ConfigError(f"--param: this profile runs several portfolios ({', '.join(ids)}):"
                          " give --param ID.key=value")  # fmt: skip
    unknown = sorted(set(scoped) - set(ids))
    if unknown:
        raise ConfigError(f"bad --param {short(unknown[0])}.…: no portfolio {short(unknown[0])!r}"
                          f" (they are: {', '.join(ids)})")  # fmt: skip
    portfolios = [
        p | {"params": dict(p.get("params") or {}) | scoped[str(p.get("id"))]}
        if isinstance(p, dict) and str(p.get("id")) in scoped
        else p
        for p in listed
    ]
    return data | {"portfolios": portfolios}


def _without_foreign_params(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The profile's strategy params, left out when a flag or, below it, the environment
    names another strategy."""
    wanted = (overrides.get("strategy") or {}).get("name") or env_strategy_name()
    section = data.get("strategy")
    if wanted is None or not isinstance(section, dict) or "params" not in section:
        return data
    own = section.get("name", StrategyConfig().name)
    if str(wanted).strip() == str(own).strip():
        return data
    return data | {"strategy": {k: v for k, v in section.items() if k != "params"}}


_SECRETS = secret_paths(Settings)
