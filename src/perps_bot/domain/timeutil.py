"""Durations and timestamps: one parser for `7d|12h|90m|30s`, one ISO-8601 parser and
formatter, and the range of times the bot accepts.

Why bounds: every duration and time comes from a user (a profile, a flag, a data
file). An unbounded one is a run that never ends (`--duration 99999999999999999999d`)
or a date past year 9999 that fails deep inside a run; both are refused here, with
one clear line, where the text is read.
"""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from perps_bot.domain.errors import short

DAY_MS = 86_400_000
#: a year of 365 days (annualising, funding per year)
YEAR_MS = 365 * DAY_MS
_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": DAY_MS, "w": 7 * DAY_MS}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
#: The longest duration anywhere (run length, intervals, timeframes): 10 years.
MAX_DURATION_MS = 3_652 * DAY_MS
#: Times the bot accepts, in epoch ms: from 1970-01-01 to 3000-01-01 (larger values
#: are micro- or nanoseconds; feeds.readers also spots epoch seconds). A run of at most
#: MAX_DURATION_MS from any of them stays representable.
MIN_TIME_MS = 0
MAX_TIME_MS = 32_503_680_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_duration(text: str) -> int:
    """Parse `7d`, `12h`, `90m`, `30s`, `250ms`, `1w` into milliseconds (> 0, <= 10 years)."""
    match = _DURATION.match(text.lower())
    if match is None:
        raise ValueError(
            f"invalid duration {short(text)!r}: use a number and a unit, e.g. 7d, 12h, 90m"
        )
    # decimal: 1.001s is 1001 ms (as a float product it is 1000.9999999999999)
    value = Decimal(match.group(1)) * _UNITS_MS[match.group(2)]
    if value > MAX_DURATION_MS:
        raise ValueError(f"invalid duration {short(text)!r}: at most 10 years (3652d)")
    if value < 1:
        raise ValueError(f"invalid duration {short(text)!r}: must be at least 1ms")
    if value != value.to_integral_value():
        raise ValueError(f"invalid duration {short(text)!r}: not a whole number of milliseconds")
    return int(value)


def format_duration(ms: int) -> str:
    """The shortest exact unit form of `ms` (inverse of parse_duration for whole units)."""
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS_MS[unit]
        if ms % size == 0 and ms >= size:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


#: "00".."59" and "000".."999": zero-padded numbers looked up, not formatted (an int
#: formatted with a spec, f"{n:02d}", costs about as much as the rest of `iso_utc`)
_TWO_DIGITS = tuple(f"{n:02d}" for n in range(60))
THREE_DIGITS = tuple(f"{n:03d}" for n in range(1000))


def iso_utc(ts_ms: int) -> str:
    """ISO-8601 UTC with milliseconds, e.g. 2024-01-01T00:00:00.000Z. Every log line
    and fill carries one: the date is formatted once per day, the time by arithmetic
    and table lookups."""
    day, ms = divmod(int(ts_ms), DAY_MS)
    seconds, milli = divmod(ms, 1000)
    minutes, sec = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    two = _TWO_DIGITS
    return f"{_date_text(day)}T{two[hour]}:{two[minute]}:{two[sec]}.{THREE_DIGITS[milli]}Z"


@lru_cache(maxsize=1024)
def _date_text(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m-%d")


def parse_iso_ms(text: str) -> int:
    """ISO-8601 text (a naive time is UTC; `Z` allowed) -> epoch ms; ValueError if it is
    not ISO-8601."""
    dt = datetime.fromisoformat(text.strip())
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def time_in_range(ts_ms: int) -> bool:
    """True for a time the bot accepts (MIN_TIME_MS <= ts < MAX_TIME_MS)."""
    return MIN_TIME_MS <= ts_ms < MAX_TIME_MS
