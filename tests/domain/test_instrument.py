"""Instrument.prepare: the one rule every venue's orders pass (SPEC 8)."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perps_bot.domain import DenialReason, Instrument, InstrumentRefusal, OrderType, Side

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
    assert prepared.size <= size
    assert size - prepared.size < ETH.step_size * (1 + 1e-9)
    assert Decimal(repr(prepared.size)) % Decimal("0.001") == 0
    assert prepared.price is not None
    assert Decimal(repr(prepared.price)) % Decimal("0.01") == 0
    assert (prepared.price <= price) if side is Side.BUY else (prepared.price >= price)
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
