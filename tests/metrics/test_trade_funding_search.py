"""The funding index's searches over settlement times (metrics.trade_funding) are the
standard library's bisections: the same index for every time, duplicates and the
ends included."""

import bisect

from hypothesis import given
from hypothesis import strategies as st

from perps_bot.metrics.trade_funding import _first_after, _first_at

_times = st.lists(st.integers(-(2**40), 2**40), max_size=60).map(sorted)


@given(times=_times, data=st.data())
def test_the_searches_are_bisect_left_and_right(times: list[int], data: st.DataObject) -> None:
    probe = data.draw(st.one_of(st.sampled_from(times or [0]), st.integers(-(2**41), 2**41)))
    assert _first_at(times, probe) == bisect.bisect_left(times, probe)
    assert _first_after(times, probe) == bisect.bisect_right(times, probe)
