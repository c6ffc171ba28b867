"""Timestamps as every log line, fill and report shows them."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perps_bot.domain.timeutil import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    iso_utc,
    parse_duration,
    parse_iso_ms,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@given(st.integers(min_value=MIN_TIME_MS, max_value=MAX_TIME_MS - 1))
def test_iso_utc_is_the_exact_millisecond_and_parses_back(ts: int) -> None:
    exact = _EPOCH + timedelta(milliseconds=ts)
    text = iso_utc(ts)
    assert text == exact.strftime("%Y-%m-%dT%H:%M:%S.") + f"{exact.microsecond // 1000:03d}Z"
    assert parse_iso_ms(text) == ts


def test_iso_utc_at_day_and_second_boundaries() -> None:
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"
    assert iso_utc(86_399_999) == "1970-01-01T23:59:59.999Z"
    assert iso_utc(86_400_000) == "1970-01-02T00:00:00.000Z"
    assert iso_utc(1_709_164_800_000) == "2024-02-29T00:00:00.000Z"


@given(
    st.integers(min_value=1, max_value=10_000),
    st.integers(min_value=1, max_value=999),
    st.sampled_from(["s", "m", "h"]),
)
def test_a_fractional_duration_is_its_exact_milliseconds(whole: int, milli: int, unit: str) -> None:
    """1.5s is 1500 ms exactly (decimal, not float: 1.15s is not 1149.9999...)."""
    size = {"s": 1_000, "m": 60_000, "h": 3_600_000}[unit]
    assert parse_duration(f"{whole}.{milli:03d}{unit}") == (whole * 1000 + milli) * size // 1000


@pytest.mark.parametrize("text", ["1.5ms", "1.0005s", "1.0001s", "2.5ms"])
def test_a_duration_that_is_not_whole_milliseconds_is_refused(text: str) -> None:
    """Before, 1.5ms ran as 1 ms and 1.0001s as 1 s: a silent misread of the profile."""
    with pytest.raises(ValueError, match="whole number of milliseconds"):
        parse_duration(text)
