"""Instrument.prepare: the one rule every venue's orders pass (SPEC 8)."""

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perps_bot.domain import DenialReason, Instrument, InstrumentRefusal, OrderType, Side
from perps_bot.domain.instrument import steps_of

ETH = Instrument(
    symbol="ETH-PERP",
    exchange_symbol="ETH/USDT:USDT",
    tick_size=0.01,
    step_size=0.001,
    min_quantity=0.001,
    min_notional=20.0,
    tiers=((0.0, 0.005, 0.0),),
    maker_bps=2.0,
    taker_bps=5.0,
)


def test_sizes_are_floored_to_the_step_exactly() -> None:
    assert ETH.floor_size(0.0166243) == 0.016
    assert ETH.floor_size(0.3) == 0.3  # three steps of 0.1 in decimal, not 2.9999...
    assert ETH.floor_size(0.0009) == 0.0


def test_limit_prices_round_to_the_passive_side() -> None:
    assert ETH.round_price(3000.017, Side.BUY) == 3000.01
    assert ETH.round_price(3000.011, Side.SELL) == 3000.02
    assert ETH.round_price(3000.01, Side.SELL) == 3000.01


def test_minimums_refuse_before_an_order_exists() -> None:
    with pytest.raises(InstrumentRefusal) as quantity:
        ETH.prepare(Side.BUY, 0.0004, OrderType.MARKET, None, False, 3000.0)
    assert quantity.value.reason is DenialReason.BELOW_MIN_QUANTITY
    with pytest.raises(InstrumentRefusal) as notional:
        ETH.prepare(Side.BUY, 0.006, OrderType.MARKET, None, False, 3000.0)  # 18 < 20 USDT
    assert notional.value.reason is DenialReason.BELOW_MIN_NOTIONAL
    # a reduce-only order may be smaller than the minimum notional (Binance does the same)
    assert ETH.prepare(Side.SELL, 0.006, OrderType.MARKET, None, True, 3000.0).size == 0.006
    # a limit order's notional is counted at its limit price
    with pytest.raises(InstrumentRefusal):
        ETH.prepare(Side.BUY, 0.01, OrderType.LIMIT, 1_999.0, False, 3000.0)


def test_a_market_orders_notional_is_counted_at_the_mark() -> None:
    """Binance counts a market order's notional at the mark price; the last price only
    stands in while no mark is known. A limit order's stays at its limit price."""
    at_mark = ETH.prepare(Side.SELL, 0.007, OrderType.MARKET, None, False, 2_700.0, 3_000.0)
    assert at_mark.size == 0.007  # 21 at the mark, 18.9 at the last price
    with pytest.raises(InstrumentRefusal) as notional:
        ETH.prepare(Side.BUY, 0.007, OrderType.MARKET, None, False, 3_000.0, 2_700.0)
    assert notional.value.reason is DenialReason.BELOW_MIN_NOTIONAL
    assert ETH.prepare(Side.BUY, 0.007, OrderType.MARKET, None, False, 3_000.0, 0.0).size == 0.007
    assert ETH.prepare(Side.BUY, 0.007, OrderType.LIMIT, 3_000.0, False, 3_000.0, 2_700.0).price


@given(
    size=st.floats(min_value=0.001, max_value=1e4, allow_nan=False),
    price=st.floats(min_value=1.0, max_value=1e5, allow_nan=False),
    side=st.sampled_from(list(Side)),
)
def test_prepared_orders_are_on_the_grid_and_never_larger(
    size: float, price: float, side: Side
) -> None:
    try:
        prepared = ETH.prepare(side, size, OrderType.LIMIT, price, False, price)
    except InstrumentRefusal:
        assert ETH.floor_size(size) * ETH.round_price(price, side) < ETH.min_notional
        return
    # never larger, but for float noise: a value a millionth of a step below a grid
    # point is that point (test_a_difference_of_sizes_floors_to_the_steps_it_is)
    assert prepared.size <= size + 1e-6 * ETH.step_size
    assert size - prepared.size < ETH.step_size * (1 + 1e-9)
    assert Decimal(repr(prepared.size)) % Decimal("0.001") == 0
    assert prepared.price is not None
    assert Decimal(repr(prepared.price)) % Decimal("0.01") == 0
    noise = 1e-6 * ETH.tick_size
    if side is Side.BUY:
        assert prepared.price <= price + noise
    else:
        assert prepared.price >= price - noise
    assert prepared.size * prepared.price >= ETH.min_notional


@given(
    size=st.floats(min_value=0.0, max_value=1e3, allow_nan=False),
    step=st.sampled_from([0.0, 1e-8, 0.001, 0.1, 0.3, 1.0, 5.0]),
)
def test_below_step_is_the_floor_to_nothing(size: float, step: float) -> None:
    # the two-steps shortcut answers exactly as the floor would
    instrument = Instrument(
        symbol="X", exchange_symbol="X", tick_size=0.01, step_size=step, min_quantity=0.0,
        min_notional=0.0, tiers=((0.0, 0.005, 0.0),), maker_bps=0.0, taker_bps=0.0,
    )  # fmt: skip
    for near in (size, step, 2.0 * step, 2.0 * step * (1 - 1e-16), step * (1 - 1e-12)):
        assert instrument.below_step(near) == (instrument.floor_size(near) <= 0.0)


@given(
    held=st.integers(0, 2_000),
    more=st.integers(1, 2_000),
    step=st.sampled_from([0.001, 0.01, 0.1, 1.0]),
)
def test_a_difference_of_sizes_floors_to_the_steps_it_is(held: int, more: int, step: float) -> None:
    """A size the bot computes (target 0.3 less the 0.1 held is the float
    0.19999999999999998) is the whole steps it stands for: floored to one step less, the
    order fell a step short and the last step then counted as "below one step", so the
    position never reached its target."""
    instrument = Instrument(
        symbol="X", exchange_symbol="X", tick_size=step, step_size=step, min_quantity=0.0,
        min_notional=0.0, tiers=((0.0, 0.005, 0.0),), maker_bps=0.0, taker_bps=0.0,
    )  # fmt: skip
    target, now = round((held + more) * step, 3), round(held * step, 3)
    wanted = round(more * step, 3)
    assert instrument.floor_size(target - now) == wanted
    assert not instrument.below_step(target - now)
    # prices computed the same way keep their tick on both passive sides
    assert instrument.round_price(target - now, Side.BUY) == wanted
    assert instrument.round_price(now + wanted, Side.SELL) == target


def test_a_computed_size_or_price_is_not_a_step_or_tick_off() -> None:
    xrp = Instrument(
        symbol="XRP-PERP", exchange_symbol="XRP/USDT:USDT", tick_size=0.0001, step_size=0.1,
        min_quantity=0.1, min_notional=5.0, tiers=((0.0, 0.005, 0.0),), maker_bps=2.0,
        taker_bps=5.0,
    )  # fmt: skip
    assert xrp.floor_size(0.3 - 0.1) == 0.2  # 0.19999999999999998, not one step of 0.1
    assert not xrp.below_step(0.3 - 0.2)  # 0.09999999999999998 is one step, not none
    assert xrp.round_price(0.1 * 3, Side.SELL) == 0.3  # 0.30000000000000004, not 0.3001


def test_the_maximum_quantity_refuses_before_an_order_exists() -> None:
    """Binance refuses an order above LOT_SIZE's maxQty, and a market order above
    MARKET_LOT_SIZE's (-4005), reduce-only ones too: a dry run filled them."""
    btc = Instrument("BTC-PERP", "BTC/USDT:USDT", 0.1, 0.001, 0.001, 5.0, ((0.0, 0.004, 0.0),),
                     2.0, 5.0, max_quantity=1000.0, max_market_quantity=120.0)  # fmt: skip
    for order_type, size, reduce_only in ((OrderType.MARKET, 120.001, False),
                                          (OrderType.MARKET, 121.0, True),
                                          (OrderType.LIMIT, 1000.001, False),
                                          (OrderType.STOP_MARKET, 1000.5, True)):  # fmt: skip
        with pytest.raises(InstrumentRefusal) as refused:
            btc.prepare(Side.SELL, size, order_type, 60_000.0, reduce_only, 60_000.0)
        assert refused.value.reason is DenialReason.ABOVE_MAX_QUANTITY, order_type
        assert "above the maximum quantity" in refused.value.detail
    assert btc.prepare(Side.BUY, 120.0, OrderType.MARKET, None, False, 6e4).size == 120.0
    assert btc.prepare(Side.BUY, 1000.0, OrderType.LIMIT, 6e4, False, 6e4).size == 1000.0
    assert ETH.prepare(Side.BUY, 1e6, OrderType.MARKET, None, False, 3000.0).size == 1e6


def test_a_size_above_the_maximum_comes_in_equal_pieces_within_it() -> None:
    """A close above the largest market order goes out in the fewest orders within it,
    equal to the step (a remainder could fall below the minimum quantity)."""
    btc = Instrument("BTC-PERP", "BTC/USDT:USDT", 0.1, 0.001, 0.001, 5.0, ((0.0, 0.004, 0.0),),
                     2.0, 5.0, max_quantity=1000.0, max_market_quantity=120.0)  # fmt: skip
    assert btc.pieces(300.0, OrderType.MARKET) == (100.0, 100.0, 100.0)
    assert btc.pieces(250.0, OrderType.MARKET) == (83.334, 83.333, 83.333)
    assert btc.pieces(240.001, OrderType.MARKET) == (80.001, 80.0, 80.0)
    assert btc.pieces(120.0, OrderType.MARKET) == (120.0,)
    assert btc.pieces(0.1 * 3, OrderType.MARKET) == (0.1 * 3,)  # within: untouched
    assert btc.pieces(300.0, OrderType.STOP_MARKET) == (100.0, 100.0, 100.0)
    assert btc.pieces(300.0, OrderType.LIMIT) == (300.0,)
    assert ETH.pieces(1e6, OrderType.MARKET) == (1e6,)


_STEPS = [0.01, 0.1, 0.001, 1.0, 5.0, 0.5, 0.25, 1e-4, 1e-8, 10.0, 100.0, 0.05, 0.3, 0.07,
          2.5, 0.125, 1e-12, 3e-5, 0.2, 1e-16]  # fmt: skip


@given(st.sampled_from(_STEPS), st.integers(-(2**53), 2**53))
def test_whole_steps_are_the_float_round_gives(step: float, whole: int) -> None:
    """`steps_of` divides two exact integers where `round(whole * step, decimals)`
    formats and parses: the same float, sign of zero included, at every size."""
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    expected = round(whole * step, max(0, -exponent))
    got = steps_of(whole, step)
    assert got == expected and math.copysign(1.0, got) == math.copysign(1.0, expected)
