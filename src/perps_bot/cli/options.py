"""Shared CLI parsing: `--param key=value` values and the run-option overrides that sit
on top of the profile (CLI flags are the highest-precedence settings layer)."""

from typing import Any

from perps_bot.config import ConfigError
from perps_bot.config.values import ParamValue, parse_param_value

__all__ = ["ParamValue", "parse_param_value", "parse_params", "parse_symbols", "run_overrides"]


def parse_params(pairs: list[str] | None) -> dict[str, ParamValue]:
    """`["fast=5", "slow=20"]` -> {"fast": 5, "slow": 20}; malformed -> ConfigError (one line)."""
    params: dict[str, ParamValue] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"bad --param {pair!r}: expected key=value, e.g. --param fast=10")
        params[key.strip()] = parse_param_value(value.strip())
    return params


def parse_symbols(text: str | None) -> list[str] | None:
    if text is None:
        return None
    symbols = [s.strip() for s in text.split(",") if s.strip()]
    if not symbols:
        raise ConfigError("bad --symbols: give a comma-separated list, e.g. BTC-PERP,ETH-PERP")
    return symbols


def run_overrides(
    *,
    dev_fast: bool | None = None,
    dry_run: bool | None = None,
    seed: int | None = None,
    duration: str | None = None,
    symbols: str | None = None,
    strategy: str | None = None,
    params: list[str] | None = None,
    log_level: str | None = None,
    http_port: int | None = None,
    db: str | None = None,
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
    overrides: dict[str, Any] = {}
    if run:
        overrides["run"] = run
    strategy_section: dict[str, Any] = {}
    if strategy is not None:
        strategy_section["name"] = strategy
    parsed = parse_params(params)
    if parsed:
        strategy_section["params"] = parsed
    if strategy_section:
        overrides["strategy"] = strategy_section
    return overrides
