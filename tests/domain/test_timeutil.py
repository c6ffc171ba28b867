"""Timestamps as every log line, fill and report shows them."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from perps_bot.domain.timeutil import MAX_TIME_MS, MIN_TIME_MS, iso_utc, parse_iso_ms

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
