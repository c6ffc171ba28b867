"""Durations and timestamps: one parser for `7d|12h|90m|30s`, one ISO-8601 formatter."""

import re
from datetime import UTC, datetime

_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")


def parse_duration(text: str) -> int:
    """Parse `7d`, `12h`, `90m`, `30s`, `250ms`, `1w` into milliseconds (> 0)."""
    match = _DURATION.match(text.lower())
    if match is None:
        raise ValueError(f"invalid duration {text!r}: use a number and a unit, e.g. 7d, 12h, 90m")
    value = float(match.group(1)) * _UNITS_MS[match.group(2)]
    if value <= 0:
        raise ValueError(f"invalid duration {text!r}: must be positive")
    return int(value)


def format_duration(ms: int) -> str:
    """The shortest exact unit form of `ms` (inverse of parse_duration for whole units)."""
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS_MS[unit]
        if ms % size == 0 and ms >= size:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def iso_utc(ts_ms: int) -> str:
    """ISO-8601 UTC with milliseconds, e.g. 2024-01-01T00:00:00.000Z."""
    dt = datetime.fromtimestamp(ts_ms / 1000.0, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"
