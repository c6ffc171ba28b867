"""A batch of candles kept as columns gives the same candle whichever way it is read:
one index alone (`candle(i)`, what the orchestrator builds after an order), the whole
batch at once (iteration, what a merged feed or the capture writer reads), or a slice.
The single-candle path reads open time, open, volume and the mark series from their
arrays and the rest from the quiet walk's lists, so a mismatch there would hand a
stage a candle the batch does not hold."""

import dataclasses
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from perps_bot.domain import Candle, FundingRate, MarketEvent
from perps_bot.feeds.columns import CandleColumns

SYM = "ETH-PERP"
MINUTE = 60_000

Columns = tuple[object, tuple[object, ...], tuple[object, ...] | None]

prices = st.floats(min_value=0.01, max_value=1e6, allow_nan=False)
marks = st.one_of(st.just(math.nan), prices)  # NaN: no mark known for that candle


@st.composite
def batches(draw: st.DrawFn) -> tuple[Columns, list[Candle]]:
    """A batch's columns (`make` builds it, with inserts) and the candles it stands
    for, built field by field."""
    n = draw(st.integers(min_value=1, max_value=12))
    start = draw(st.integers(min_value=0, max_value=10**6)) * MINUTE
    rows = [draw(st.tuples(prices, prices, prices, prices, prices)) for _ in range(n)]
    marked = draw(st.booleans())
    mark_rows = [draw(st.tuples(marks, marks, marks)) for _ in range(n)] if marked else []
    open_time = start + np.arange(n, dtype=np.int64) * MINUTE
    cols = [np.array([row[k] for row in rows], dtype=np.float64) for k in range(5)]
    mark_cols = (
        tuple(np.array([row[k] for row in mark_rows], dtype=np.float64) for k in range(3))
        if marked
        else None
    )
    columns = (open_time + MINUTE, (open_time, *cols), mark_cols)
    expected = []
    for i, (o, h, low, c, v) in enumerate(rows):
        known = [None if math.isnan(x) else x for x in mark_rows[i]] if marked else []
        start_i = int(open_time[i])
        expected.append(Candle(start_i + MINUTE, SYM, start_i, o, h, low, c, v, *known))
    return columns, expected


def make(columns: Columns, inserts: list[tuple[int, MarketEvent]]) -> CandleColumns:
    ts, fields, mark_fields = columns
    return CandleColumns(SYM, ts, fields, mark_fields, inserts)  # type: ignore[arg-type]


def _fields(candle: object) -> tuple[object, ...]:
    """Each field with its type: 1 and 1.0 compare equal but store differently."""
    assert isinstance(candle, Candle)
    values = [getattr(candle, field.name) for field in dataclasses.fields(candle)]
    return tuple((type(v).__name__, v) for v in values)


@settings(max_examples=150, deadline=None)
@given(batches(), st.data())
def test_one_candle_alone_is_the_batch_candle(
    batch: tuple[Columns, list[Candle]], data: st.DataObject
) -> None:
    columns, expected = batch
    block = make(columns, [])
    i = data.draw(st.integers(min_value=-len(expected), max_value=len(expected) - 1))
    alone = _fields(block[i])  # before the batch is built: the single-candle path
    assert alone == _fields(expected[i])
    assert [_fields(c) for c in block] == [_fields(c) for c in expected]
    assert _fields(block[i]) == alone  # once built, an index reads the built list


@settings(max_examples=50, deadline=None)
@given(batches())
def test_inserts_keep_their_places(batch: tuple[Columns, list[Candle]]) -> None:
    """A funding settlement between candles is an event of the batch in its place; the
    candles around it are the same whichever way they are read."""
    columns, expected = batch
    at = len(expected) // 2
    funding = FundingRate(ts=expected[at].ts - 1, symbol=SYM, rate=0.0001, mark=1.0)
    block = make(columns, [(at, funding)])
    alone = [block[k] for k in range(len(block))]
    assert alone[at] is funding
    assert [_fields(c) for k, c in enumerate(alone) if k != at] == [_fields(c) for c in expected]
    assert list(block) == alone
