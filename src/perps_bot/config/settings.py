"""Layered settings: built-in defaults < profile YAML < environment < CLI flags.

freqtrade's layering, on pydantic-settings: the profile file is a settings
source, `PERPS_BOT__SECTION__KEY` variables are the environment source, and CLI
flags arrive as init arguments (highest precedence). Sources are deep-merged,
so `--param fast=5` changes one strategy parameter and keeps the others.
"""

import hashlib
import json
import os
from collections.abc import Mapping
from importlib import resources
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
from perps_bot.config.profile_yaml import ProfileError, load_profile_file
from perps_bot.config.secrets import holds_secret, is_model, refuse_profile_secret, secret_paths
from perps_bot.domain import PerpsBotError, RunMode, short, short_path

#: A profile here (relative to the working directory) overrides the built-in one.
PROFILES_DIR = Path("config/profiles")
#: The built-in profiles ship inside the package, so the command works from any folder.
BUILTIN_PROFILES = "perps_bot.config.profiles"


#: sections that change what a run tells, not what it trades: out of the config hash,
#: and a resumed run may change them
NOT_TRADING_SECTIONS = frozenset({"alerts"})
#: `run:` settings that change where the run writes or what it shows, not what it trades:
#: out of the config hash (the same backtest into another database or folder reports the
#: same bytes), and a resumed run may change them
NOT_TRADING_RUN_KEYS = frozenset(
    {"log_dir", "data_dir", "database", "http_port", "live_view", "log_level"}
)


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


def _builtin_profiles() -> Path:
    return Path(str(resources.files(BUILTIN_PROFILES)))


def known_profiles(profiles_dir: Path | None = None) -> list[str]:
    """Names of the built-in profiles and of those in the local profiles folder."""
    folders = [_builtin_profiles(), profiles_dir if profiles_dir is not None else PROFILES_DIR]
    return sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.yaml")})


def profile_path(profile: str, profiles_dir: Path | None = None) -> Path | None:
    """A YAML path given as the profile, else `<profiles_dir>/NAME.yaml` (default
    ./config/profiles) when it exists, else the built-in profile NAME; None if neither."""
    candidate = Path(profile)
    if candidate.suffix in (".yaml", ".yml"):
        return candidate if _exists(candidate) else None
    local = (profiles_dir if profiles_dir is not None else PROFILES_DIR) / f"{profile}.yaml"
    if _exists(local):
        return local
    builtin = _builtin_profiles() / f"{profile}.yaml"
    return builtin if _exists(builtin) else None


def _exists(path: Path) -> bool:
    """Path.exists() raises on a NUL byte or a name too long for the file system:
    such a profile name is simply not found."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def read_profile(profile: str, profiles_dir: Path | None = None) -> dict[str, Any]:
    """The profile's sections as read from its file (config.profile_yaml: bounded YAML)."""
    path = profile_path(profile, profiles_dir)
    if path is None:
        known = ", ".join(known_profiles(profiles_dir))
        raise ConfigError(
            f"profile {short(profile)!r} not found (known: {known}; or a path to a .yaml)"
        )
    try:
        data = load_profile_file(path)
    except ProfileError as exc:
        raise ConfigError(str(exc)) from None
    stem = Path(profile).stem
    named = data.setdefault("profile", stem)
    if Path(profile).suffix not in (".yaml", ".yml") and named != stem:
        # chosen by name: the name is the profile (the prod promotion gate, the database)
        raise ConfigError(
            f"profile {short_path(path)} says profile: {short(repr(named))}, but it was"
            f" chosen as {short(stem)!r}: remove that line or make it {short(stem)}"
        )
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
        raise ConfigError(describe_validation_error(exc)) from exc
    except SettingsError as exc:  # an environment variable that is not valid JSON
        raise ConfigError(_describe_env_error(exc)) from exc
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


def describe_validation_error(exc: ValidationError) -> str:
    """The first error as `path.to.key: message (got value)`, plus how many more there are."""
    errors = exc.errors()
    first, loc = errors[0], errors[0]["loc"]
    # a union (a param: number, text or true/false) fails once per kind it tried, each
    # under the key's path plus pydantic's name for the kind: one error, at the key
    tried = [e for e in errors if e["loc"][:-1] == loc[:-1] and _union_member(e["loc"])]
    if len(tried) > 1 and _union_member(loc):
        loc, errors = loc[:-1], [first, *(e for e in errors if e not in tried)]
    path = ".".join(short(str(p), 40) for p in loc) or "config"
    msg = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    got = first.get("input")
    hidden = (first["type"] == "extra_forbidden" or isinstance(got, dict | list)
              or holds_secret(_SECRETS, loc))  # fmt: skip
    shown = "" if hidden or short(repr(got)) in msg else f" (got {short(repr(got))})"
    more = f" [+{len(errors) - 1} more]" if len(errors) > 1 else ""
    return f"config error: {path}: {msg}{shown}{more}"


def _union_member(loc: tuple[int | str, ...]) -> bool:
    """The path ends in pydantic's name for a kind of a union (`float`, `function-before[
    _not_a_bool(), float]`), not in a key (`[key]` names a mapping's key itself)."""
    last = str(loc[-1]) if loc else ""
    return last in ("float", "int", "str", "bool") or ("[" in last and not last.startswith("["))


def _describe_env_error(exc: SettingsError) -> str:
    """pydantic-settings says which section's variables did not parse; name them."""
    parts = str(exc).split('"')
    section = parts[1] if len(parts) > 2 else ""
    prefix = f"PERPS_BOT__{section.upper()}"
    names = sorted(k for k in os.environ if k.upper().startswith(prefix)) if section else []
    shown = ", ".join(short(n) for n in names[:3]) or "a PERPS_BOT__ variable"
    return f"config error: environment {shown}: cannot be parsed (lists and mappings are JSON)"


_SECRETS = secret_paths(Settings)
