"""The emulator's margin model and liquidation engine, driven in-process (no HTTP).

Figures are checked against sums written out here (not against the emulator's own
helpers), so a wrong sign or a wrong wallet in account.py shows up as a failure.
"""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perps_emulator import EmulatorServer
from perps_emulator.account import liquidation_price
from perps_emulator.instruments import BTC_TIERS, ETH_TIERS, GENERIC_TIERS, INSTRUMENTS, Tier
from perps_emulator.state import TAKER_FEE

NOW = 1_700_000_000_000
TABLES = {"BTC": BTC_TIERS, "ETH": ETH_TIERS, "GENERIC": GENERIC_TIERS}


def clock() -> int:
    return NOW


def make(
    *,
    liquidation: bool = True,
    isolated: tuple[str, ...] = ("BTCUSDT",),
    leverage: int = 20,
    balance: float = 10_000.0,
) -> EmulatorServer:
    server = EmulatorServer(
        symbols=("BTCUSDT", "ETHUSDT"),
        seed=1,
        initial_balance=balance,
        clock=clock,
        liquidation=liquidation,
    )
    for symbol in isolated:
        server.engine.set_margin_type(symbol, "ISOLATED")
    for symbol in server.markets:
        server.engine.set_leverage(symbol, leverage)
    return server


def market_order(server: EmulatorServer, symbol: str, side: str, qty: str) -> None:
    order = server.engine.place_order(
        {"symbol": symbol, "side": side, "type": "MARKET", "quantity": qty}
    )
    assert order.status == "FILLED"


def direct_maintenance(notional: float, tiers: tuple[Tier, ...]) -> float:
    """Written out again on purpose: the test's own reading of a tier table."""
    chosen = next(t for t in reversed(tiers) if notional >= t[0])
    return notional * chosen[1] - chosen[2]


# --- the formula ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TABLES))
def test_tier_tables_are_continuous(name: str) -> None:
    """The liquidation price solves within one tier; that needs maintenance continuous."""
    tiers = TABLES[name]
    assert tiers[0] == (0.0, tiers[0][1], 0.0)
    for (_, mmr0, cum0), (floor, mmr1, cum1) in itertools.pairwise(tiers):
        assert floor > 0 and mmr1 > mmr0
        assert cum1 == pytest.approx(cum0 + floor * (mmr1 - mmr0), abs=1e-6)


def test_every_listed_instrument_uses_a_checked_table() -> None:
    assert {i.tiers for i in INSTRUMENTS.values()} <= set(TABLES.values())


@settings(max_examples=300, deadline=None)
@given(
    sign=st.sampled_from([1, -1]),
    qty=st.floats(0.001, 2_000.0),
    entry=st.floats(1.0, 100_000.0),
    margin_fraction=st.floats(-0.5, 2.0),
    table=st.sampled_from(sorted(TABLES)),
)
def test_at_the_liquidation_price_margin_balance_equals_maintenance(
    sign: int, qty: float, entry: float, margin_fraction: float, table: str
) -> None:
    tiers = TABLES[table]
    base = margin_fraction * qty * entry  # WB - TMM_other + UPNL_other
    price = liquidation_price(sign, qty, entry, base, tiers)
    if price == 0.0:
        # No liquidation price: a long safe down to zero, or a short bankrupt anywhere.
        at_zero = base - sign * qty * entry
        assert at_zero >= 0 if sign > 0 else at_zero <= 0
        return
    margin_balance = base + sign * qty * (price - entry)
    maintenance = direct_maintenance(qty * price, tiers)
    assert margin_balance == pytest.approx(maintenance, rel=1e-9, abs=1e-6 * qty * entry)
    # and it is the edge: safe on one side, liquidated on the other
    safer = price * (1 + sign * 1e-6)
    worse = price * (1 - sign * 1e-6)
    assert base + sign * qty * (safer - entry) > direct_maintenance(qty * safer, tiers)
    assert base + sign * qty * (worse - entry) < direct_maintenance(qty * worse, tiers)


@settings(max_examples=60, deadline=None)
@given(
    isolated=st.booleans(),
    side=st.sampled_from(["BUY", "SELL"]),
    btc_qty=st.sampled_from(["0.050", "0.100", "0.300", "0.700"]),
    eth_side=st.sampled_from(["BUY", "SELL", ""]),
    leverage=st.integers(2, 50),
)
def test_the_account_is_at_maintenance_at_its_reported_liquidation_price(
    isolated: bool, side: str, btc_qty: str, eth_side: str, leverage: int
) -> None:
    """positionRisk's liquidationPrice, put in as the mark, leaves margin balance at
    maintenance (within the tick the mark is snapped to), isolated or cross with
    another cross position."""
    server = make(
        liquidation=False,
        isolated=("BTCUSDT",) if isolated else (),
        leverage=leverage,
        balance=100_000.0,
    )
    market_order(server, "BTCUSDT", side, btc_qty)
    if eth_side:
        market_order(server, "ETHUSDT", eth_side, "1.000")
    server.set_price("ETHUSDT", 3_090.0)  # the other position moves too
    account, state = server.engine.account, server.state
    price = account.liquidation_price("BTCUSDT")
    if price == 0.0:
        return
    server.set_mark("BTCUSDT", price)
    pos = state.positions["BTCUSDT"]
    mark = server.markets["BTCUSDT"].mark
    btc_unrealized = pos.amount * (mark - pos.entry_price)
    btc_maint = direct_maintenance(abs(pos.amount) * mark, BTC_TIERS)
    if isolated:
        margin_balance = pos.isolated_margin + btc_unrealized
        maintenance = btc_maint
    else:
        eth = state.positions["ETHUSDT"]
        eth_mark = server.markets["ETHUSDT"].mark
        margin_balance = (
            state.balances["USDT"] + btc_unrealized + eth.amount * (eth_mark - eth.entry_price)
        )
        maintenance = btc_maint + direct_maintenance(abs(eth.amount) * eth_mark, ETH_TIERS)
    tick_error = abs(pos.amount) * 1.01 * 0.05  # slope of (MB - MM) times half a tick
    assert margin_balance == pytest.approx(maintenance, abs=tick_error + 1e-6)


# --- isolated margin --------------------------------------------------------------------


def test_isolated_margin_is_posted_released_pro_rata_and_takes_funding() -> None:
    server = make(liquidation=False, leverage=10)
    market_order(server, "BTCUSDT", "BUY", "0.200")
    pos = server.state.positions["BTCUSDT"]
    assert pos.isolated_margin == pytest.approx(0.2 * pos.entry_price / 10)
    wallet = server.state.balances["USDT"]
    assert server.engine.account.cross_wallet == pytest.approx(wallet - pos.isolated_margin)
    posted = pos.isolated_margin
    market_order(server, "BTCUSDT", "SELL", "0.050")
    assert pos.isolated_margin == pytest.approx(posted * 0.75)
    server.markets["BTCUSDT"].funding_rate = 0.001
    before = pos.isolated_margin
    server.settle_funding()
    mark = server.markets["BTCUSDT"].mark
    assert pos.isolated_margin == pytest.approx(before - 0.15 * mark * 0.001)
    market_order(server, "BTCUSDT", "SELL", "0.150")
    assert pos.amount == 0 and pos.isolated_margin == 0.0


# --- liquidation --------------------------------------------------------------------------


def test_isolated_long_closes_at_its_liquidation_price_like_binance() -> None:
    server = make()
    market_order(server, "BTCUSDT", "BUY", "0.100")
    resting = server.engine.place_order(
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "quantity": "0.003",
            "price": "40000",
            "timeInForce": "GTC",
        }
    )
    other = server.engine.place_order(
        {
            "symbol": "ETHUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "quantity": "0.010",
            "price": "2000",
            "timeInForce": "GTC",
        }
    )
    pos = server.state.positions["BTCUSDT"]
    entry, margin = pos.entry_price, pos.isolated_margin
    wallet = server.state.balances["USDT"]
    price = server.engine.account.liquidation_price("BTCUSDT")
    assert 0 < price < entry
    server.set_price("BTCUSDT", price + 1.0)
    assert pos.amount == 0.1  # not yet
    server.set_price("BTCUSDT", price - 500.0)  # gaps past it
    assert pos.amount == 0.0
    close = server.markets["BTCUSDT"].spec.round_price(price)
    order = server.state.orders_by_client_id[f"autoclose-{NOW}000001"]
    assert (order.status, order.type, order.side, order.auto_close) == (
        "FILLED",
        "MARKET",
        "SELL",
        "LIQUIDATION",
    )
    assert order.avg_price == close and order.executed_qty == 0.1
    trade = server.state.trades[-1]
    assert (trade.order_id, trade.price, trade.qty) == (order.order_id, close, 0.1)
    loss = 0.1 * (entry - close)
    commission = 0.1 * close * TAKER_FEE
    fee = min(0.0125 * 0.1 * close, margin - loss - commission)
    rows = [
        (i.income_type, i.income) for i in server.state.income if i.trade_id == str(trade.trade_id)
    ]
    assert rows == [
        ("REALIZED_PNL", pytest.approx(-loss)),
        ("COMMISSION", pytest.approx(-commission)),
        ("INSURANCE_CLEAR", pytest.approx(-fee)),
    ]
    assert server.state.balances["USDT"] == pytest.approx(wallet - loss - commission - fee)
    assert resting.status == "CANCELED" and other.status == "NEW"  # only that symbol's


def test_a_short_is_liquidated_when_the_price_rises() -> None:
    server = make()
    market_order(server, "BTCUSDT", "SELL", "0.100")
    price = server.engine.account.liquidation_price("BTCUSDT")
    assert price > server.markets["BTCUSDT"].mark
    server.set_mark("BTCUSDT", price + 100.0)  # the mark alone moves
    assert server.state.positions["BTCUSDT"].amount == 0.0
    assert server.state.trades[-1].side == "BUY"
    assert server.state.trades[-1].price == server.markets["BTCUSDT"].spec.round_price(price)


def test_a_position_already_past_it_after_funding_closes_at_the_mark() -> None:
    server = make(leverage=50)
    market_order(server, "BTCUSDT", "BUY", "0.100")
    # longs pay 1.8%: the 2% margin falls below maintenance, some is left for the fee
    server.markets["BTCUSDT"].funding_rate = 0.018
    server.settle_funding()
    assert server.state.positions["BTCUSDT"].amount == 0.0
    assert server.state.trades[-1].price == server.markets["BTCUSDT"].mark
    kinds = [i.income_type for i in server.state.income]
    assert kinds[-4:] == ["FUNDING_FEE", "REALIZED_PNL", "COMMISSION", "INSURANCE_CLEAR"]


def test_cross_account_is_liquidated_when_margin_balance_reaches_maintenance() -> None:
    server = make(isolated=(), balance=1_000.0)
    market_order(server, "BTCUSDT", "BUY", "0.200")
    market_order(server, "ETHUSDT", "BUY", "1.000")
    account = server.engine.account
    price = account.liquidation_price("BTCUSDT")
    assert price > 0
    server.set_price("BTCUSDT", price + 20.0)
    assert server.state.positions["BTCUSDT"].amount == 0.2
    server.set_price("BTCUSDT", price - 20.0)
    assert server.state.positions["BTCUSDT"].amount == 0.0
    assert server.state.trades[-2].price == server.markets["BTCUSDT"].spec.round_price(price)
    # the clearance fee exceeds what maintenance left: ETH follows, at its mark
    assert server.state.positions["ETHUSDT"].amount == 0.0
    assert server.state.trades[-1].price == server.markets["ETHUSDT"].mark
    forced = [o for o in server.state.orders.values() if o.auto_close]
    assert [o.symbol for o in forced] == ["BTCUSDT", "ETHUSDT"]
    wallet = server.state.balances["USDT"]
    assert wallet == pytest.approx(1_000.0 + sum(i.income for i in server.state.income))
    assert wallet < 50.0  # what maintenance left went to the clearance fee


def test_off_by_default_nothing_is_liquidated() -> None:
    server = make(liquidation=False)
    assert not EmulatorServer().liquidation
    market_order(server, "BTCUSDT", "BUY", "0.100")
    price = server.engine.account.liquidation_price("BTCUSDT")
    server.set_price("BTCUSDT", price * 0.9)
    server.step(5)
    assert server.state.positions["BTCUSDT"].amount == 0.1
    assert not any(o.auto_close for o in server.state.orders.values())
    server.liquidation = True  # switched on later: the next move liquidates, at the mark
    server.step()
    assert server.state.positions["BTCUSDT"].amount == 0.0
    assert server.state.trades[-1].price == server.markets["BTCUSDT"].mark
