"""Shared CLI parsing: `--param key=value` values and the run-option overrides that sit
on top of the profile (CLI flags are the highest-precedence settings layer)."""

from typing import Any

from perps_bot.config import ConfigError, Settings
from perps_bot.config.portfolios import portfolio_ids
from perps_bot.config.values import ParamValue, parse_param_value
from perps_bot.domain import parse_duration, parse_iso_ms, short, time_in_range

#: `--llm-cache-only` on every command that runs strategies (llm.cache_only)


def llm_overrides(cache_only: bool) -> dict[str, Any]:
    """The settings layer of `--llm-cache-only` (nothing when it is not given)."""
    return {"llm": {"cache_only": True}} if cache_only else {}


def parse_params(pairs: list[str] | None) -> dict[str, ParamValue]:
    """`["fast=5", "slow=20"]` -> {"fast": 5, "slow": 20}; malformed -> ConfigError (one line)."""
    params: dict[str, ParamValue] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(
                f"bad --param {short(pair)!r}: expected key=value, e.g. --param fast=10"
            )
        params[key.strip()] = parse_param_value(value.strip())
    return params


def flag_duration(flag: str, text: str) -> int:
    """A duration flag (`--train 30d`) -> ms; a bad one is a one-line ConfigError."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"bad {flag}: {exc}") from None


def flag_time(flag: str, text: str) -> int:
    """An ISO-8601 date or time flag (naive = UTC, 1970..3000) -> epoch ms."""
    try:
        ms = parse_iso_ms(text.replace("Z", "+00:00"))
    except ValueError:
        ms = None
    if ms is None or not time_in_range(ms):
        raise ConfigError(f"bad {flag} {short(text)!r}: use an ISO-8601 date between 1970"
                          " and 3000, e.g. 2024-01-01")  # fmt: skip
    return ms


def parse_symbols(text: str | None) -> list[str] | None:
    if text is None:
        return None
    symbols = [s.strip() for s in text.split(",") if s.strip()]
    if not symbols:
        raise ConfigError("bad --symbols: give a comma-separated list, e.g. BTC-PERP,ETH-PERP")
    return symbols


def check_symbols_flag(settings: Settings, symbols: str | None) -> None:
    """`--symbols` sets run.symbols, the symbols of the portfolios that name none: on a
    profile whose every portfolio names its own it would change nothing, silently."""
    if symbols is not None and settings.portfolios and all(p.symbols for p in settings.portfolios):
        raise ConfigError(
            f"--symbols {short(symbols)}: every portfolio of this profile names its own"
            " symbols (portfolios[].symbols): it would change none"
        )


def run_overrides(
    *,
    dev_fast: bool | None = None,
    dry_run: bool | None = None,
    seed: int | None = None,
    duration: str | None = None,
    symbols: str | None = None,
    strategy: list[str] | str | None = None,
    params: list[str] | None = None,
    log_level: str | None = None,
    http_port: int | None = None,
    db: str | None = None,
    llm_cache_only: bool = False,
) -> dict[str, Any]:
    """The nested settings dict for the flags that were actually given."""
    run: dict[str, Any] = {}
    if dev_fast:
        run["dev_fast"] = True
    if dry_run:
        run["dry_run"] = True
    if seed is not None:
        run["seed"] = seed
    if duration is not None:
        run["duration"] = duration
    parsed_symbols = parse_symbols(symbols)
    if parsed_symbols is not None:
        run["symbols"] = parsed_symbols
    if log_level is not None:
        run["log_level"] = log_level.upper()
    if http_port is not None:
        run["http_port"] = http_port
    if db is not None:
        run["database"] = db
    overrides: dict[str, Any] = llm_overrides(llm_cache_only)
    if run:
        overrides["run"] = run
    return overrides | strategy_overrides(strategy, params)


def strategy_overrides(
    strategies: list[str] | str | None, params: list[str] | None
) -> dict[str, Any]:
    """`--strategy` (repeatable: several side by side, SPEC 10, each its own portfolio
    with an equal share of the balance, named after its strategy) and `--param` (with
    several portfolios scoped: `--param ID.key=value`)."""
    names = [strategies] if isinstance(strategies, str) else list(strategies or [])
    unscoped, scoped = _split_params(parse_params(params))
    overrides: dict[str, Any] = {}
    if len(names) > 1:
        if unscoped:
            key = next(iter(unscoped))
            raise ConfigError(f"bad --param {short(key)!r}: with several --strategy, name the"
                              f" portfolio: --param ID.{short(key)}=value")  # fmt: skip
        ids = portfolio_ids(names)
        unknown = sorted(set(scoped) - set(ids))
        if unknown:
            raise ConfigError(f"bad --param {short(unknown[0])}.…: no portfolio"
                              f" {short(unknown[0])!r} (they are: {', '.join(ids)})")  # fmt: skip
        overrides["portfolios"] = [
            {"id": pid, "strategy": name, "params": scoped.get(pid, {})}
            for pid, name in zip(ids, names, strict=True)
        ]
        return overrides
    section: dict[str, Any] = {}
    if names:
        section["name"] = names[0]
        overrides["portfolios"] = []  # one --strategy: that strategy is the run
        (own,) = portfolio_ids(names)
        unscoped |= scoped.pop(own, {})
        if scoped:
            first = next(iter(scoped))
            raise ConfigError(f"bad --param {short(first)}.…: the run has one strategy"
                              f" ({names[0]}): --param key=value")  # fmt: skip
    elif scoped:
        overrides["portfolio_params"] = scoped
    if unscoped:
        section["params"] = unscoped
    if section:
        overrides["strategy"] = section
    return overrides


def _split_params(
    params: dict[str, ParamValue],
) -> tuple[dict[str, ParamValue], dict[str, dict[str, ParamValue]]]:
    """{key: v} and {portfolio id: {key: v}} (`ID.key`: ids may hold dots, keys do not)."""
    unscoped: dict[str, ParamValue] = {}
    scoped: dict[str, dict[str, ParamValue]] = {}
    for key, value in params.items():
        pid, dot, name = key.rpartition(".")
        if dot and pid and name:
            scoped.setdefault(pid, {})[name] = value
        else:
            unscoped[key] = value
    return unscoped, scoped
