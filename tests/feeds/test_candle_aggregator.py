"""Candles aggregated to a longer strategy timeframe: the bars equal a direct
computation and are seen exactly when they complete."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perps_bot.domain import Candle
from perps_bot.feeds.bars import CandleAggregator

M = 60_000


def _candles(closes: list[float], start: int = 0, step: int = M) -> list[Candle]:
    out = []
    prev = closes[0]
    for i, close in enumerate(closes):
        t = start + i * step
        out.append(
            Candle(
                t + step, "X", t, prev, max(prev, close) + 1, min(prev, close) - 1, close, i + 1.0
            )
        )
        prev = close
    return out


@settings(max_examples=100, deadline=None)
@given(
    closes=st.lists(st.integers(50, 150).map(float), min_size=1, max_size=80),
    per_bar=st.sampled_from([2, 3, 5, 15]),
    offset=st.integers(0, 14),
)
def test_bars_equal_a_direct_aggregation(closes: list[float], per_bar: int, offset: int) -> None:
    tf = per_bar * M
    candles = _candles(closes, start=10 * tf + offset * M)
    agg = CandleAggregator(tf)
    emitted = [(c.ts, agg.add(c)) for c in candles]
    bars = [(ts, bar) for ts, bar in emitted if bar is not None]

    # direct: group candles by the bar their open time falls in; complete groups only
    opens = np.array([c.open_time for c in candles])
    keys = opens - opens % tf
    expected = []
    for key in np.unique(keys):
        group = [c for c, k in zip(candles, keys, strict=True) if k == key]
        if group[-1].ts < key + tf:
            continue  # the data ends inside this bar: never emitted
        expected.append(
            (key + tf, key, group[0].open, max(c.high for c in group),
             min(c.low for c in group), group[-1].close, sum(c.volume for c in group))
        )  # fmt: skip
    got = [(b.ts, b.open_time, b.open, b.high, b.low, b.close, b.volume) for _, b in bars]
    assert got == expected
    # each bar is handed over by the candle that closes it: no earlier, no later
    assert all(event_ts == bar.ts for event_ts, bar in bars)


def test_marks_carry_the_last_known_mark_and_extremes() -> None:
    agg = CandleAggregator(3 * M)
    c1, c2, c3 = _candles([100.0, 101.0, 99.0])
    c1.mark, c1.mark_high, c1.mark_low = 100.5, 101.0, 100.0
    c2.mark = None  # unknown: the bar keeps the last known one
    c3.mark, c3.mark_high, c3.mark_low = 98.5, 100.2, 98.0
    assert agg.add(c1) is None and agg.add(c2) is None
    bar = agg.add(c3)
    assert bar is not None
    assert (bar.mark, bar.mark_high, bar.mark_low) == (98.5, 101.0, 98.0)


def test_symbols_are_aggregated_apart() -> None:
    agg = CandleAggregator(2 * M)
    a = _candles([1.0, 2.0])
    b = [Candle(c.ts, "Y", c.open_time, 10.0, 11.0, 9.0, 10.5, 1.0) for c in a]
    assert agg.add(a[0]) is None and agg.add(b[0]) is None
    bar_a, bar_b = agg.add(a[1]), agg.add(b[1])
    assert bar_a is not None and bar_b is not None
    assert (bar_a.symbol, bar_a.close, bar_b.symbol, bar_b.close) == ("X", 2.0, "Y", 10.5)


def test_timeframe_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        CandleAggregator(0)
