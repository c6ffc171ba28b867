"""How a strategy parameter's text becomes its value (`--param`, `--space ...:choice`):
kept in config so every layer that reads parameters from text reads them alike."""

import math

from perps_bot.config.errors import ConfigError
from perps_bot.domain import short

ParamValue = bool | int | float | str


def parse_param_value(text: str) -> ParamValue:
    """`true/false` -> bool, integers -> int, decimals -> float, anything else stays text.

    `nan`, `inf` and decimals too large for a float are refused (ConfigError): read as
    floats they would reach the strategy as a threshold no price ever crosses."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    if not math.isfinite(value):
        raise ConfigError(f"bad --param value {short(text)!r}: not a finite number")
    return value
