"""The equity limits at their exact boundaries, as the profile writes them: a drawdown of
exactly `max_drawdown` (or `reducing_drawdown`) from the peak halts (reduces), a day's
loss of exactly `daily_loss_limit` is not yet more than it. Equities are floats; an
equity written exactly at a threshold must land on the documented side, not on the one
a rounding error of the subtraction picks (about half of such cases did)."""

from decimal import Decimal

from hypothesis import assume, given
from hypothesis import strategies as st

from perps_bot.config import RiskConfig
from perps_bot.domain import TradingState
from perps_bot.risk import RiskGate
from tests.risk.test_risk_gate import FakeAccount

LIMITS = st.sampled_from(["0.05", "0.1", "0.15", "0.2", "0.25", "0.3"])
CENTS = st.integers(min_value=10_000, max_value=10_000_000)


def exactly(base_cents: int, limit: str) -> tuple[float, float]:
    """(base, base less `limit` of it): both exact as decimals of a few places."""
    base = Decimal(base_cents) / 100
    at = base * (1 - Decimal(limit))
    assume(Decimal(repr(float(at))) == at)
    return float(base), float(at)


def limits(**risk: object) -> RiskGate:
    return RiskGate(RiskConfig.model_validate(risk), FakeAccount())


@given(CENTS, LIMITS)
def test_a_drawdown_of_exactly_max_drawdown_halts(peak_cents: int, limit: str) -> None:
    peak, at = exactly(peak_cents, limit)
    gate = limits(max_drawdown=float(limit), reducing_drawdown=float(limit), daily_loss_limit=1.0)
    gate.on_equity(0, peak)
    gate.on_equity(1, at)
    assert gate.state is TradingState.HALTED, (peak, at, gate.state_detail)


@given(CENTS, LIMITS)
def test_a_drawdown_of_exactly_reducing_drawdown_reduces(peak_cents: int, limit: str) -> None:
    peak, at = exactly(peak_cents, limit)
    gate = limits(max_drawdown=0.9, reducing_drawdown=float(limit), daily_loss_limit=1.0)
    gate.on_equity(0, peak)
    gate.on_equity(1, at)
    assert gate.state is TradingState.REDUCING, (peak, at)


@given(CENTS, LIMITS)
def test_a_days_loss_of_exactly_the_limit_is_not_more_than_it(start_cents: int, limit: str) -> None:
    start, at = exactly(start_cents, limit)
    gate = limits(max_drawdown=0.9, reducing_drawdown=0.9, daily_loss_limit=float(limit))
    gate.on_equity(0, start)
    gate.on_equity(1, at)
    assert gate.state is TradingState.ACTIVE, (start, at, gate.state_detail)
    gate.on_equity(2, at - 0.01)  # a cent more than the limit
    assert gate.state is TradingState.REDUCING
