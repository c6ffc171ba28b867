"""A flip (an order that closes a position and opens the other side) under the order
cap. `max_order_notional` caps the order (SPEC 1: "hard caps on order and position
notional"), as one order reaches the exchange; a close is exempt from it (a risk limit
never keeps the bot from getting out). So a flip is cut to the cap, but never below
its close: long 0.6 at 100 with a 50 USDT cap, a sell of 1.0 was cut to 0.5 and left a
long of 0.1 the strategy wanted out of (a plain sell of 0.6 passed whole); it is cut to
the close, 0.6, now. The same for the account's caps (several portfolios): the part
that closes the account's net position is never cut by its order cap."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perps_bot.config import RiskConfig
from perps_bot.domain import DenialReason, OrderIntent, Side
from perps_bot.risk import RiskGate
from perps_bot.risk.account_gate import AccountGate
from tests.risk.test_risk_gate import BTC, ETH, T0, FakeAccount

PRICE = 100.0
TOL = 1e-9


def portfolio_gate(held: float, **risk: object) -> RiskGate:
    account = FakeAccount(positions={BTC: held}, marks={BTC: PRICE}, equity_value=1e9,
                          available=1e9)  # fmt: skip
    gate = RiskGate(RiskConfig.model_validate(risk), account)
    gate.on_market_data(BTC, T0)
    return gate


def account_gate(held: float, **risk: object) -> AccountGate:
    account = FakeAccount(positions={BTC: held}, marks={BTC: PRICE}, equity_value=1e9)
    return AccountGate(RiskConfig.model_validate(risk), account, [BTC])


def sell(size: float) -> OrderIntent:
    return OrderIntent(BTC, Side.SELL, size)


def test_the_order_cap_never_cuts_the_close_of_a_flip() -> None:
    """Long 0.6 at 100 (60 USDT, more than the 50 USDT order cap): a sell of 1.0 is cut
    to the close, 0.6, not to 0.5 (which left a long of 0.1)."""
    decision = portfolio_gate(0.6, max_order_notional=50.0).check(sell(1.0), T0, PRICE)
    assert decision.approved
    assert decision.size == pytest.approx(0.6)
    assert decision.reason is DenialReason.MAX_ORDER_NOTIONAL, "the cap that cut it"
    assert "resized 1 -> 0.6 (the close only)" in decision.detail, decision.detail
    assert "max_order_notional 50" in decision.detail


def test_a_flip_whose_close_is_below_the_cap_is_cut_to_the_cap() -> None:
    """Long 0.3: a sell of 0.8 (80 USDT) is one order of 80 USDT; the cap cuts it to
    0.5 (50 USDT), the close and a short of 0.2. Long 0.5, a sell of 1.0: cut to 0.5,
    the close (the order cap is about the order the exchange gets, not its part that
    opens)."""
    decision = portfolio_gate(0.3, max_order_notional=50.0).check(sell(0.8), T0, PRICE)
    assert (decision.size, decision.reason) == (pytest.approx(0.5), DenialReason.MAX_ORDER_NOTIONAL)
    assert "resized 0.8 -> 0.5: order notional 80.00" in decision.detail, decision.detail
    decision = portfolio_gate(0.5, max_order_notional=50.0).check(sell(1.0), T0, PRICE)
    assert decision.size == pytest.approx(0.5)


def test_without_resizing_a_flip_over_the_order_cap_is_denied_whole() -> None:
    """`resize_to_caps: false` denies what it would have cut; a flip cut to its close is
    cut, so the flip is denied (the strategy's own close passes, whatever its size)."""
    gate = portfolio_gate(0.6, max_order_notional=50.0, resize_to_caps=False)
    denied = gate.check(sell(1.0), T0, PRICE)
    assert (denied.approved, denied.reason) == (False, DenialReason.MAX_ORDER_NOTIONAL)
    assert gate.check(sell(0.6), T0, PRICE).size == 0.6


def test_the_close_counts_the_sells_on_their_way() -> None:
    """Long 1.0 with a sell of 0.3 on its way: the close left is 0.7, and a sell of 1.5
    is cut to it (not to the cap's 0.5)."""
    gate = portfolio_gate(1.0, max_order_notional=50.0)
    decision = gate.check(sell(1.5), T0, PRICE, in_flight=0.3)
    assert decision.size == pytest.approx(0.7)


def test_the_account_order_cap_never_cuts_the_close_of_the_accounts_position() -> None:
    decision = account_gate(0.6, max_order_notional=50.0).check(BTC, Side.SELL, 1.0, PRICE)
    assert decision.size == pytest.approx(0.6)
    assert decision.reason is DenialReason.MAX_ORDER_NOTIONAL
    assert "(the close only)" in decision.detail, decision.detail
    # with sells of 0.3 on their way, 0.7 of the long of 1.0 is left to close
    decision = account_gate(1.0, max_order_notional=50.0).check(BTC, Side.SELL, 1.5, PRICE, 0.3)
    assert decision.size == pytest.approx(0.7)


SIZES = st.floats(min_value=0.01, max_value=5.0)
HELD = st.floats(min_value=-5.0, max_value=5.0)
CAPS = st.floats(min_value=1.0, max_value=500.0)


def closing(held: float, in_flight: float) -> float:
    """The close a sell can make: the long left once the sells on their way fill."""
    ahead = held - in_flight
    return ahead if held > 0.0 and ahead > 0.0 else 0.0


def assert_within_caps(size: float, close: float, ahead: float, order: float, pos: float) -> None:
    """A sell of `size` never cut below the close, and what opens (or adds) within the caps."""
    if size > close * (1.0 + TOL):  # it opens (or adds to) a short
        assert size * PRICE <= order * (1.0 + 1e-6)
        assert abs(ahead - size) * PRICE <= pos * (1.0 + 1e-6)


@given(HELD, st.floats(min_value=0.0, max_value=2.0), SIZES, CAPS, CAPS)
def test_a_sell_never_opens_past_the_caps_nor_is_cut_below_its_close(
    held: float, in_flight: float, size: float, order: float, pos: float
) -> None:
    gate = portfolio_gate(held, max_order_notional=order, max_position_notional=pos)
    decision = gate.check(sell(size), T0, PRICE, in_flight=in_flight)
    close = closing(held, in_flight)
    if decision.approved:
        assert decision.size >= min(size, close) * (1.0 - TOL), (decision, close)
        assert_within_caps(decision.size, close, held - in_flight, order, pos)
        if decision.size < size:
            assert decision.reason is not None and decision.detail.startswith("resized")
    else:  # only an order adding to a short at the position cap is denied
        assert close == 0.0 and decision.reason is DenialReason.MAX_POSITION_NOTIONAL


@given(HELD, st.floats(min_value=0.0, max_value=2.0), SIZES, CAPS, CAPS)
def test_the_account_never_opens_past_its_caps_nor_cuts_a_close(
    held: float, in_flight: float, size: float, order: float, pos: float
) -> None:
    gate = account_gate(held, max_order_notional=order, max_position_notional=pos)
    decision = gate.check(BTC, Side.SELL, size, PRICE, in_flight)
    close = closing(held, in_flight)
    if decision.size > 0.0:
        assert decision.size >= min(size, close) * (1.0 - TOL), (decision, close)
        assert_within_caps(decision.size, close, held - in_flight, order, pos)
    else:
        assert close == 0.0 and decision.reason is DenialReason.MAX_POSITION_NOTIONAL


@given(HELD, SIZES, CAPS, CAPS)
def test_without_resizing_an_order_passes_as_asked_or_not_at_all(
    held: float, size: float, order: float, pos: float
) -> None:
    gate = portfolio_gate(held, max_order_notional=order, max_position_notional=pos,
                          resize_to_caps=False)  # fmt: skip
    decision = gate.check(sell(size), T0, PRICE)
    close = closing(held, 0.0)
    if decision.approved:
        assert (decision.size, decision.reason) == (size, None)
        assert_within_caps(size, close, held, order, pos)
    else:  # denied: it opens (or adds) past a cap
        assert size > close


def test_a_flip_cut_to_its_close_passes_as_a_close_would() -> None:
    """Over max_leverage already (an ETH short of 400 000 USDT on 100 000 equity): a
    flip of the BTC long cut to its close is a close, which lowers the leverage, and
    passes as a plain sell of 0.6 does; it was denied MAX_LEVERAGE."""
    positions = {BTC: 0.6, ETH: -100.0}
    marks = {BTC: PRICE, ETH: 4_000.0}
    account = FakeAccount(positions=positions, marks=marks, equity_value=100_000.0)
    gate = RiskGate(RiskConfig(max_order_notional=50.0, max_leverage=2.0), account)
    gate.on_market_data(BTC, T0)
    gate.on_market_data(ETH, T0)
    assert gate.check(sell(0.6), T0, PRICE).size == 0.6
    decision = gate.check(sell(1.0), T0, PRICE)
    assert (decision.size, decision.reason) == (0.6, DenialReason.MAX_ORDER_NOTIONAL)
    whole = AccountGate(RiskConfig(max_order_notional=50.0, max_leverage=2.0), account, [BTC, ETH])
    assert whole.check(BTC, Side.SELL, 1.0, PRICE).size == 0.6


def test_a_portfolios_close_that_grows_the_accounts_short_keeps_the_account_caps() -> None:
    """Portfolio a long 0.6, b short 1.2: the account is short 0.6. a's close (a sell of
    0.6) takes the account to short 1.2; it closes nothing of the account's, so the
    account's order cap cuts it (and without resizing denies it)."""
    decision = account_gate(-0.6, max_order_notional=50.0).check(BTC, Side.SELL, 0.6, PRICE)
    assert (decision.size, decision.reason) == (pytest.approx(0.5), DenialReason.MAX_ORDER_NOTIONAL)
    assert "(the close only)" not in decision.detail
    gate = account_gate(-0.6, max_order_notional=50.0, resize_to_caps=False)
    assert gate.check(BTC, Side.SELL, 0.6, PRICE).reason is DenialReason.MAX_ORDER_NOTIONAL
