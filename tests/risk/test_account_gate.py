"""The account's caps over several portfolios (SPEC 10): only an order that shrinks
the account's net position is let past them."""

import pytest

from perps_bot.config import RiskConfig
from perps_bot.domain import DenialReason, Side
from perps_bot.risk.account_gate import AccountGate
from tests.risk.test_risk_gate import FakeAccount

BTC = "BTC-PERP"
PRICE = 100.0


def gate(held: float, **risk: object) -> AccountGate:
    account = FakeAccount(positions={BTC: held}, marks={BTC: PRICE})
    return AccountGate(RiskConfig.model_validate(risk), account, [BTC])


def test_a_flip_is_held_to_the_order_cap() -> None:
    """Long 0.5 (50 USDT): a sell of 1.0 (100 USDT) flips to a short as big, which
    shrinks nothing; the account's 50 USDT order cap cuts it."""
    decision = gate(0.5, max_order_notional=50.0).check(BTC, Side.SELL, 1.0, PRICE)
    assert decision.size == pytest.approx(0.5)
    assert decision.reason is DenialReason.MAX_ORDER_NOTIONAL, "the cap that cut it"
    denied = gate(0.5, max_order_notional=50.0, resize_to_caps=False).check(
        BTC, Side.SELL, 1.0, PRICE
    )
    assert (denied.size, denied.reason) == (0.0, DenialReason.MAX_ORDER_NOTIONAL)


def test_a_close_already_on_its_way_makes_another_sell_an_increase() -> None:
    decision = gate(0.5, max_position_notional=20.0, resize_to_caps=False).check(
        BTC, Side.SELL, 0.5, PRICE, in_flight=0.5
    )
    assert (decision.size, decision.reason) == (0.0, DenialReason.MAX_POSITION_NOTIONAL)


def test_a_reduction_passes_whatever_the_caps() -> None:
    decision = gate(0.5, max_order_notional=10.0, max_position_notional=10.0).check(
        BTC, Side.SELL, 0.5, PRICE
    )
    assert (decision.size, decision.reason) == (0.5, None)


def test_an_order_that_did_not_go_out_gives_its_place_in_the_order_rate_back() -> None:
    account_gate = gate(0.0, max_orders_per_minute=1)
    assert account_gate.check(BTC, Side.BUY, 0.1, PRICE, now_ms=1_000).size == 0.1
    account_gate.withdraw(1_000)  # the instrument refused it
    assert account_gate.check(BTC, Side.BUY, 0.1, PRICE, now_ms=2_000).size == 0.1
    refused = account_gate.check(BTC, Side.BUY, 0.1, PRICE, now_ms=3_000)
    assert refused.reason is DenialReason.ORDER_RATE_LIMIT
