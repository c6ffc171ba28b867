"""Snapshots kept as their recipe (`EquityBuffer.marked`, storage.equity_marked) are
written as the very rows the loop would have added one by one: the same bits (a NaN
mark, -0.0 and huge sizes included), in the order they were added among the others."""

import math
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from perps_bot.storage.equity_blocks import EquityBuffer

_floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324, math.nan]),
)

#: one step: ("row", block, index, equity, cash, unrealized) or ("marked", block,
#: start, count, cash, size, entry)
#: a row's time is one of a block's (ties with the marked rows test their order)
_row = st.tuples(st.just("row"), st.integers(0, 2), st.integers(0, 39), _floats, _floats, _floats)
_marked = st.tuples(
    st.just("marked"), st.integers(0, 2), st.integers(0, 30), st.integers(1, 10),
    _floats, _floats, _floats,
)  # fmt: skip


def _blocks(seed: int) -> list[tuple[Any, Any, list[float]]]:
    """Three blocks of 40 candles: times (with repeats, to test the order of ties),
    marks as an array and as the Python list the loop reads."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(3):
        times = np.sort(rng.integers(0, 10**13, 40)).astype(np.int64)
        times[5] = times[4]
        marks = rng.normal(100.0, 50.0, 40)
        marks[7] = math.nan
        marks[8] = -0.0
        out.append((times, marks, marks.tolist()))
    return out


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.one_of(_row, _marked), max_size=30), seed=st.integers(0, 3))
def test_marked_rows_are_written_as_the_rows_added_one_by_one(
    steps: list[tuple[Any, ...]], seed: int
) -> None:
    blocks = _blocks(seed)
    recipe, one_by_one = EquityBuffer(), EquityBuffer()
    recipe.run_id = one_by_one.run_id = "r"
    for step in steps:
        if step[0] == "row":
            _, block, index, equity, cash, unrealized = step
            for buffer in (recipe, one_by_one):
                buffer.add_ts(int(blocks[block][0][index]))
                buffer.add_values([equity, cash, unrealized])
            continue
        _, block, start, count, cash, size, entry = step
        times, marks, mark_list = blocks[block]
        recipe.marked.add(times, marks, start, count, cash, size, entry)
        for i in range(start, start + count):  # what the loop did, candle by candle
            unrealized = 0.0 + size * (mark_list[i] - entry)
            one_by_one.add_ts(int(times[i]))
            one_by_one.add_values([cash + unrealized, cash, unrealized])
    assert len(recipe) == len(one_by_one)
    got, _ = recipe.take_rows(0)
    want, _ = one_by_one.take_rows(0)
    assert got == want  # block rows: counts, first and last times, every column's bytes
    assert not len(recipe) and not recipe.marked.rows
