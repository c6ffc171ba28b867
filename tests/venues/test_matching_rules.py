"""The pure building blocks of simulated matching: synthetic book, book walk, fill draws."""

import pytest

from perps_bot.domain import BookSnapshot, Candle, Side
from perps_bot.venues.book import Book, SyntheticBook, touch_around
from perps_bot.venues.fill_rules import (
    candle_path,
    fee_for,
    is_crossed,
    market_price,
    marketable_take,
    resting_fill_quantity,
    walk_book,
    with_slippage,
)

SHAPE = SyntheticBook(levels=4, spread_bps=10.0, level_spacing_bps=2.0, depth_growth=0.5)


def test_touch_is_half_the_spread_each_side() -> None:
    bid, ask = touch_around(10_000.0, 10.0)
    assert bid == pytest.approx(9_995.0)
    assert ask == pytest.approx(10_005.0)


def test_synthetic_levels_spacing_and_growing_depth() -> None:
    book = SHAPE.around_mid(10_000.0, depth=2.0)
    assert [p for p, _ in book.asks] == pytest.approx([10_005.0 * (1 + i * 2e-4) for i in range(4)])
    assert [p for p, _ in book.bids] == pytest.approx([9_995.0 * (1 - i * 2e-4) for i in range(4)])
    assert [q for _, q in book.asks] == pytest.approx([2.0, 3.0, 4.5, 6.75])
    assert [q for _, q in book.bids] == pytest.approx([2.0, 3.0, 4.5, 6.75])
    assert book.best_bid == pytest.approx(9_995.0)
    assert book.best_ask == pytest.approx(10_005.0)


def test_synthetic_side_reads_every_level_as_the_formula_gives_it() -> None:
    """Levels are computed when read: iterating, indexing (negative too) and slicing give
    exactly the floats of the documented formula, whichever way they are read."""
    shape = SyntheticBook(levels=7, spread_bps=10.0, level_spacing_bps=1.7, depth_growth=0.15)
    bid, ask, depth = 60_012.37, 60_072.43, 0.37
    step, growth = 1.7 / 1e4, 1.15
    asks = [(ask * (1.0 + i * step), depth * growth**i) for i in range(7)]
    bids = [(bid * (1.0 - i * step), depth * growth**i) for i in range(7)]
    for side, expected in ((Side.BUY, asks), (Side.SELL, bids)):
        levels = shape.side(side, bid, ask, depth)
        assert len(levels) == 7
        assert list(levels) == expected
        assert [levels[i] for i in range(7)] == expected
        assert [levels[i - 7] for i in range(7)] == expected
        assert levels[2:5] == expected[2:5]
        assert levels[::-1] == expected[::-1]
        with pytest.raises(IndexError):
            levels[7]
        with pytest.raises(IndexError):
            levels[-8]


def test_taker_side_is_asks_for_buy_and_bids_for_sell() -> None:
    book = Book.from_snapshot(
        BookSnapshot(ts=0, symbol="X", bids=[(99.0, 1.0)], asks=[(101.0, 1.0)])
    )
    assert book.liquidity_for(Side.BUY) == [(101.0, 1.0)]
    assert book.liquidity_for(Side.SELL) == [(99.0, 1.0)]
    assert SHAPE.side(Side.BUY, 99.0, 101.0, 1.0)[0] == (101.0, 1.0)
    assert SHAPE.side(Side.SELL, 99.0, 101.0, 1.0)[0] == (99.0, 1.0)


def test_walk_book_consumes_levels_in_order() -> None:
    levels = [(100.0, 1.0), (101.0, 2.0), (102.0, 5.0)]
    assert walk_book(levels, 2.5, Side.BUY) == pytest.approx((2.5, 100.0 + 1.5 * 101.0))
    assert walk_book(levels, 2.5, Side.BUY, limit=100.5) == pytest.approx((1.0, 100.0))


def test_market_price_worsens_with_size_and_adds_slippage() -> None:
    levels = SHAPE.side(Side.BUY, 9_995.0, 10_005.0, 1.0)
    small = market_price(levels, 0.5, Side.BUY, 5.0)
    medium = market_price(levels, 3.0, Side.BUY, 5.0)
    large = market_price(levels, 8.0, Side.BUY, 5.0)
    assert small == pytest.approx(10_005.0 * 1.0005)
    assert small is not None and medium is not None and large is not None
    assert small < medium < large
    expected_medium = (10_005.0 * 1.0 + 10_005.0 * 1.0002 * 1.5 + 10_005.0 * 1.0004 * 0.5) / 3.0
    assert medium == pytest.approx(expected_medium * 1.0005)


def test_market_sell_hits_bids_below_the_touch() -> None:
    levels = SHAPE.side(Side.SELL, 9_995.0, 10_005.0, 1.0)
    price = market_price(levels, 2.0, Side.SELL, 5.0)
    assert price is not None
    assert price < 9_995.0
    assert price == pytest.approx((9_995.0 + 9_995.0 * 0.9998) / 2 * 0.9995)


def test_market_order_past_the_book_fills_rest_at_last_level() -> None:
    levels = [(100.0, 1.0), (101.0, 1.0)]
    price = market_price(levels, 4.0, Side.BUY, 0.0)
    assert price == pytest.approx((100.0 + 101.0 + 2 * 101.0) / 4.0)
    assert market_price([], 1.0, Side.BUY, 0.0) is None


def test_marketable_limit_takes_only_within_limit_and_caps_the_price() -> None:
    levels = [(100.0, 1.0), (100.2, 1.0), (105.0, 10.0)]
    quantity, price = marketable_take(levels, 5.0, Side.BUY, 100.2, slippage_bps=50.0)
    assert quantity == pytest.approx(2.0)
    assert price == pytest.approx(100.2)  # 100.1 * 1.005 would exceed the limit
    assert marketable_take(levels, 1.0, Side.BUY, 99.0, 5.0) == (0.0, 0.0)
    bids = [(99.0, 1.0), (98.0, 1.0)]
    quantity, price = marketable_take(bids, 2.0, Side.SELL, 98.5, slippage_bps=0.0)
    assert (quantity, price) == (1.0, 99.0)


def test_slippage_moves_against_the_taker() -> None:
    assert with_slippage(Side.BUY, 100.0, 10.0) == pytest.approx(100.1)
    assert with_slippage(Side.SELL, 100.0, 10.0) == pytest.approx(99.9)


def test_crossing_is_at_or_through_the_limit() -> None:
    assert is_crossed(Side.BUY, 100.0, best_opposite=100.5, last=100.0)
    assert is_crossed(Side.BUY, 100.0, best_opposite=99.9, last=None)
    assert not is_crossed(Side.BUY, 100.0, best_opposite=100.5, last=100.1)
    assert is_crossed(Side.SELL, 100.0, best_opposite=99.0, last=100.0)
    assert not is_crossed(Side.SELL, 100.0, best_opposite=99.0, last=99.9)


def test_resting_fill_quantity_draws() -> None:
    # u >= p: no fill at this crossing
    assert resting_fill_quantity(1.0, 0.8, u=0.8, v=0.1, step=None) == 0.0
    # u < p and v < p: complete fill
    assert resting_fill_quantity(1.0, 0.8, u=0.1, v=0.79, step=None) == 1.0
    # v >= p: partial fill, fraction (v - p) / (1 - p)
    assert resting_fill_quantity(1.0, 0.8, u=0.1, v=0.9, step=None) == pytest.approx(0.5)
    # rounded down to the step, at least one step
    assert resting_fill_quantity(0.01, 0.8, u=0.1, v=0.9, step=0.003) == pytest.approx(0.003)
    assert resting_fill_quantity(0.01, 0.8, u=0.1, v=0.8001, step=0.003) == pytest.approx(0.003)
    # p = 1 always fills completely
    assert resting_fill_quantity(2.0, 1.0, u=0.999, v=0.999, step=0.001) == 2.0


def test_fee_is_notional_times_bps() -> None:
    assert fee_for(50_000.0, 5.0) == pytest.approx(25.0)
    assert fee_for(50_000.0, -1.0) == pytest.approx(-5.0)


def _candle(o: float, h: float, low: float, c: float) -> Candle:
    return Candle(ts=60_000, symbol="X", open_time=0, open=o, high=h, low=low, close=c, volume=1.0)


def test_candle_path_goes_to_the_nearer_extreme_first() -> None:
    assert candle_path(_candle(100.0, 101.0, 95.0, 97.0)) == (100.0, 101.0, 95.0, 97.0)
    assert candle_path(_candle(100.0, 108.0, 99.0, 105.0)) == (100.0, 99.0, 108.0, 105.0)
    # tie: high first
    assert candle_path(_candle(100.0, 102.0, 98.0, 99.0)) == (100.0, 102.0, 98.0, 99.0)
