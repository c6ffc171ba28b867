"""A flip whose opening part breaks max_leverage (or needs more margin than is free).

The close of a flip lowers the leverage and frees margin, so its plain close passes
those checks (a risk limit never keeps the bot from getting out); the flip was denied
whole, MAX_LEVERAGE or INSUFFICIENT_MARGIN, even with `resize_to_caps: true`, and the
strategy stayed in the position it wanted out of. With resizing a flip is cut to its
close, as the notional caps cut it (tests/risk/test_flip_caps.py); without, it is
denied whole. The account's caps (several portfolios) do the same on the account's net
position, and never let an order grow that position past them."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perps_bot.config import RiskConfig
from perps_bot.domain import DenialReason, OrderIntent, Side
from perps_bot.risk import RiskGate
from perps_bot.risk.account_gate import AccountGate
from tests.risk.test_risk_gate import BTC, T0, FakeAccount

PRICE = 100.0
TOL = 1e-9
BIG = 1e9  # an order and position cap nothing here reaches


def account(held: float, equity: float = 100.0, available: float = 100.0,
            leverage: float = 1.0) -> FakeAccount:  # fmt: skip
    return FakeAccount(positions={BTC: held}, marks={BTC: PRICE}, equity_value=equity,
                       available=available, leverages={BTC: leverage})  # fmt: skip


def portfolio_gate(acct: FakeAccount, **risk: object) -> RiskGate:
    limits = {"max_order_notional": BIG, "max_position_notional": BIG, **risk}
    gate = RiskGate(RiskConfig.model_validate(limits), acct)
    gate.on_market_data(BTC, T0)
    return gate


def account_gate(acct: FakeAccount, **risk: object) -> AccountGate:
    limits = {"max_order_notional": BIG, "max_position_notional": BIG, **risk}
    return AccountGate(RiskConfig.model_validate(limits), acct, [BTC])


def sell(size: float) -> OrderIntent:
    return OrderIntent(BTC, Side.SELL, size)


def test_a_flip_over_max_leverage_is_cut_to_its_close() -> None:
    """Long 0.6 at 100 on equity 100, max_leverage 1: a sell of 2.0 (short 1.4, 1.4x)
    goes out as 0.6, the close (a plain sell of 0.6 passes); it was denied."""
    gate = portfolio_gate(account(0.6), max_leverage=1.0)
    assert gate.check(sell(0.6), T0, PRICE).size == 0.6
    decision = gate.check(sell(2.0), T0, PRICE)
    assert decision.approved, decision.detail
    assert (decision.size, decision.reason) == (pytest.approx(0.6), DenialReason.MAX_LEVERAGE)
    assert "resized 2 -> 0.6 (the close only)" in decision.detail, decision.detail
    assert "max_leverage 1x" in decision.detail
    assert gate.resizes[DenialReason.MAX_LEVERAGE] == 1 and not gate.denials


def test_a_flip_on_a_symbol_set_above_max_leverage_is_cut_to_its_close() -> None:
    """The symbol's leverage set to 5x over max_leverage 2x denies every order that adds
    exposure; a flip's close adds none, so the flip is cut to it."""
    gate = portfolio_gate(account(0.6, equity=1e6, available=1e6, leverage=5.0),
                          max_leverage=2.0)  # fmt: skip
    decision = gate.check(sell(1.0), T0, PRICE)
    assert (decision.size, decision.reason) == (pytest.approx(0.6), DenialReason.MAX_LEVERAGE)
    assert "(the close only)" in decision.detail and "leverage is set to 5x" in decision.detail


def test_a_flip_needing_more_margin_than_is_free_is_cut_to_its_close() -> None:
    """Long 0.6 at 100 at 1x, 10 USDT free: a sell of 2.0 needs 80 more initial margin
    (short 1.4: 140 against the long's 60); its close frees margin, so it goes out."""
    gate = portfolio_gate(account(0.6, equity=1e6, available=10.0), max_leverage=10.0)
    decision = gate.check(sell(2.0), T0, PRICE)
    assert (decision.size, decision.reason) == (
        pytest.approx(0.6),
        DenialReason.INSUFFICIENT_MARGIN,
    )
    assert "resized 2 -> 0.6 (the close only)" in decision.detail, decision.detail
    assert "80.00 more initial margin" in decision.detail


def test_without_resizing_such_a_flip_is_denied_whole() -> None:
    gate = portfolio_gate(account(0.6), max_leverage=1.0, resize_to_caps=False)
    denied = gate.check(sell(2.0), T0, PRICE)
    assert (denied.approved, denied.size, denied.reason) == (False, 0.0, DenialReason.MAX_LEVERAGE)
    gate = portfolio_gate(account(0.6, equity=1e6, available=10.0), resize_to_caps=False)
    assert gate.check(sell(2.0), T0, PRICE).reason is DenialReason.INSUFFICIENT_MARGIN
    assert gate.check(sell(0.6), T0, PRICE).size == 0.6


def test_an_order_that_closes_nothing_is_still_denied() -> None:
    """Flat, or short already: no close to cut to, the leverage denies the order."""
    for held, size in ((0.0, 1.2), (-0.6, 0.6)):
        decision = portfolio_gate(account(held), max_leverage=1.0).check(sell(size), T0, PRICE)
        assert (decision.approved, decision.reason) == (False, DenialReason.MAX_LEVERAGE)


def test_the_account_cuts_a_flip_of_its_net_position_to_the_close() -> None:
    decision = account_gate(account(0.6), max_leverage=1.0).check(BTC, Side.SELL, 2.0, PRICE)
    assert (decision.size, decision.reason) == (pytest.approx(0.6), DenialReason.MAX_LEVERAGE)
    assert "(the close only)" in decision.detail, decision.detail
    gate = account_gate(account(0.6), max_leverage=1.0, resize_to_caps=False)
    assert gate.check(BTC, Side.SELL, 2.0, PRICE).reason is DenialReason.MAX_LEVERAGE


def test_a_portfolios_close_that_grows_the_accounts_short_past_leverage_is_denied() -> None:
    """Portfolio a long 0.6, b short 1.2: the account is short 0.6 (0.6x). a's flip cut to
    its close (a sell of 0.6) takes the account to short 1.2, 1.2x: over max_leverage 1,
    and it closes nothing of the account's, so the account denies it."""
    acct = account(-0.6)
    decision = account_gate(acct, max_leverage=1.0).check(BTC, Side.SELL, 0.6, PRICE)
    assert (decision.size, decision.reason) == (0.0, DenialReason.MAX_LEVERAGE)


HELD = st.floats(min_value=-3.0, max_value=3.0).map(lambda held: round(held, 3))
IN_FLIGHT = st.floats(min_value=0.0, max_value=2.0)
SIZES = st.floats(min_value=0.01, max_value=5.0)
EQUITY = st.floats(min_value=1.0, max_value=500.0)
LEVERAGE = st.floats(min_value=0.1, max_value=5.0)


def closing(held: float, in_flight: float) -> float:
    """The close a sell can make: the long left once the sells on their way fill."""
    ahead = held - in_flight
    return ahead if held > 0.0 and ahead > 0.0 else 0.0


@given(HELD, IN_FLIGHT, SIZES, EQUITY, LEVERAGE)
def test_a_sell_with_a_close_always_gets_out_and_never_opens_past_the_leverage(
    held: float, in_flight: float, size: float, equity: float, max_leverage: float
) -> None:
    """With resizing, a sell that closes something is never denied nor cut below its
    close; whatever of it opens a short keeps gross / equity within max_leverage."""
    acct = account(held, equity=equity, available=BIG, leverage=max_leverage)
    decision = portfolio_gate(acct, max_leverage=max_leverage).check(
        sell(size), T0, PRICE, in_flight=in_flight
    )
    close = closing(held, in_flight)
    if close > 0.0:
        assert decision.approved, decision.detail
        assert decision.size >= min(size, close) * (1.0 - TOL)
    if decision.approved and decision.size > close * (1.0 + TOL):  # it opens or adds
        after = held - in_flight - decision.size
        assert abs(after) * PRICE / equity <= max_leverage * (1.0 + 1e-6)
    if not decision.approved:
        assert close == 0.0 and decision.reason is DenialReason.MAX_LEVERAGE


@given(HELD, IN_FLIGHT, SIZES, EQUITY, LEVERAGE)
def test_the_account_never_grows_its_position_past_the_leverage(
    held: float, in_flight: float, size: float, equity: float, max_leverage: float
) -> None:
    acct = account(held, equity=equity, available=BIG)
    decision = account_gate(acct, max_leverage=max_leverage).check(
        BTC, Side.SELL, size, PRICE, in_flight
    )
    ahead = held - in_flight
    after = ahead - decision.size
    close = closing(held, in_flight)
    if close > 0.0:
        assert decision.size >= min(size, close) * (1.0 - TOL), decision
    if abs(after) > abs(ahead) * (1.0 + TOL) or ahead * after < 0.0:  # it grows or flips
        assert abs(after) * PRICE / equity <= max_leverage * (1.0 + 1e-6), decision
