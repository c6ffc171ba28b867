"""Bars from ticks (feeds.bars.BarBuilder): a bar closes at the first price at or after
its end, never before; folding a run of prices at once (`fold`, the quiet quote
stretches) builds the same bar as one `update` per price."""

from hypothesis import given
from hypothesis import strategies as st

from perps_bot.feeds.bars import BarBuilder

MINUTE = 60_000
_PRICES = st.floats(min_value=0.01, max_value=1e6, allow_nan=False)


def test_a_bar_closes_at_the_first_price_at_or_after_its_end() -> None:
    bars = BarBuilder(MINUTE)
    assert bars.open_until("BTC") is None
    assert bars.update("BTC", 5_000, 100.0, 100.5) is None
    assert bars.open_until("BTC") == MINUTE
    assert bars.update("BTC", 30_000, 103.0, 103.5) is None
    assert bars.update("BTC", 59_999, 99.0, 99.5) is None
    bar = bars.update("BTC", MINUTE, 101.0, 101.5)
    assert bar is not None
    assert (bar.ts, bar.open_time, bar.open, bar.high, bar.low, bar.close, bar.mark) == (
        MINUTE, 0, 100.0, 103.0, 99.0, 99.0, 99.5
    )  # fmt: skip
    assert bars.open_until("BTC") == 2 * MINUTE


@given(first=_PRICES, run=st.lists(st.tuples(_PRICES, _PRICES), min_size=1, max_size=40))
def test_folding_a_run_of_prices_builds_the_bar_one_update_per_price_builds(
    first: float, run: list[tuple[float, float]]
) -> None:
    one_by_one, folded = BarBuilder(MINUTE), BarBuilder(MINUTE)
    for bars in (one_by_one, folded):
        bars.update("ETH", 0, first, first)
    for i, (price, mark) in enumerate(run, start=1):
        assert one_by_one.update("ETH", i, price, mark) is None
    prices = [price for price, _ in run]
    folded.fold("ETH", min(prices), max(prices), prices[-1], run[-1][1])
    assert folded.state() == one_by_one.state()
    closed = [bars.update("ETH", MINUTE, 1.0, 1.0) for bars in (one_by_one, folded)]
    assert closed[0] == closed[1]
