"""The risk gate: each reason code, resizing, trading states and the canary caps."""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perps_bot.config import RiskConfig, load_settings
from perps_bot.domain import DenialReason, OrderIntent, OrderType, Side, TradingState
from perps_bot.risk import DAY_MS, RiskDecision, RiskGate

REPO = Path(__file__).resolve().parents[2]
BTC, ETH = "BTC-PERP", "ETH-PERP"
PRICE = 60_000.0
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
HOUR = 3_600_000


@dataclass
class FakeAccount:
    positions: dict[str, float] = field(default_factory=dict)
    marks: dict[str, float] = field(default_factory=dict)
    equity_value: float = 100_000.0
    available: float = 100_000.0
    leverages: dict[str, float] = field(default_factory=dict)

    def position_size(self, symbol: str) -> float:
        return self.positions.get(symbol, 0.0)

    def entry_price(self, symbol: str) -> float:
        return self.marks.get(symbol, 0.0)

    def mark_price(self, symbol: str) -> float:
        return self.marks.get(symbol, 0.0)

    def equity(self) -> float:
        return self.equity_value

    def available_balance(self) -> float:
        return self.available

    def leverage(self, symbol: str) -> float:
        return self.leverages.get(symbol, 5.0)


def make_gate(
    account: FakeAccount | None = None,
    margin: Callable[[str, float, float], float] | None = None,
    **risk: object,
) -> tuple[RiskGate, FakeAccount]:
    account = account or FakeAccount()
    gate = RiskGate(RiskConfig.model_validate(risk), account, margin)
    gate.on_market_data(BTC, T0)
    gate.on_market_data(ETH, T0)
    return gate, account


def buy(size: float, symbol: str = BTC, reduce_only: bool = False) -> OrderIntent:
    return OrderIntent(symbol, Side.BUY, size, reduce_only=reduce_only)


def sell(size: float, symbol: str = BTC, reduce_only: bool = False) -> OrderIntent:
    return OrderIntent(symbol, Side.SELL, size, reduce_only=reduce_only)


def assert_denied_exactly(gate: RiskGate, decision: RiskDecision, code: DenialReason) -> None:
    assert not decision.approved
    assert decision.size == 0.0
    assert decision.reason is code, decision.detail
    assert decision.detail
    assert gate.denials == Counter({code: 1})


def state_of(gate: RiskGate) -> TradingState:
    """The gate's state, read through a call so mypy does not keep an earlier narrowing."""
    return gate.state


def test_a_small_order_passes_untouched() -> None:
    gate, _ = make_gate()
    decision = gate.check(buy(0.01), T0, PRICE)
    assert decision == RiskDecision(True, 0.01, None, "approved")
    assert gate.denials == Counter()
    assert gate.state is TradingState.ACTIVE


# ---- one test per reason code, each triggering exactly that code ---------------------


def test_trading_halted() -> None:
    gate, account = make_gate()
    account.positions[BTC] = 0.1
    gate.halt("operator said stop")
    assert gate.state is TradingState.HALTED
    decision = gate.check(sell(0.1), T0, PRICE)  # even a reducing order
    assert_denied_exactly(gate, decision, DenialReason.TRADING_HALTED)
    assert "operator said stop" in decision.detail
    gate.resume()
    assert state_of(gate) is TradingState.ACTIVE
    assert gate.check(sell(0.1), T0, PRICE).approved


def test_circuit_breaker_open() -> None:
    gate, _ = make_gate()
    gate.set_circuit_breaker(True)
    assert_denied_exactly(gate, gate.check(buy(0.01), T0, PRICE), DenialReason.CIRCUIT_BREAKER_OPEN)
    gate.set_circuit_breaker(False)
    assert gate.check(buy(0.01), T0, PRICE).approved


def test_stale_market_data_when_none_yet() -> None:
    gate, _ = make_gate()
    decision = gate.check(buy(0.01, "SOL-PERP"), T0, 100.0)
    assert_denied_exactly(gate, decision, DenialReason.STALE_MARKET_DATA)
    assert "no market data yet for SOL-PERP" in decision.detail


def test_stale_market_data_after_stale_after() -> None:
    gate, _ = make_gate(stale_after="30s")
    assert gate.check(buy(0.01), T0 + 30_000, PRICE).approved  # exactly 30 s old: still fresh
    decision = gate.check(buy(0.01), T0 + 30_001, PRICE)
    assert_denied_exactly(gate, decision, DenialReason.STALE_MARKET_DATA)
    gate.on_market_data(BTC, T0 + 30_001)
    assert gate.check(buy(0.01), T0 + 30_001, PRICE).approved


def test_order_rate_limit_window_slides() -> None:
    gate, _ = make_gate(max_orders_per_minute=3, stale_after="1h")
    for ts in (T0, T0 + 10_000, T0 + 20_000):
        assert gate.check(buy(0.001), ts, PRICE).approved
    decision = gate.check(buy(0.001), T0 + 59_999, PRICE)
    assert_denied_exactly(gate, decision, DenialReason.ORDER_RATE_LIMIT)
    # the order at T0 leaves the window 60 s later; denied orders do not count
    assert gate.check(buy(0.001), T0 + 60_000, PRICE).approved
    assert not gate.check(buy(0.001), T0 + 60_000, PRICE).approved
    assert gate.check(buy(0.001), T0 + 70_000, PRICE).approved
    assert gate.denials == Counter({DenialReason.ORDER_RATE_LIMIT: 2})


@pytest.mark.parametrize(
    ("position", "intent", "word"),
    [(0.0, buy(0.1, reduce_only=True), "increase"), (0.1, sell(0.3, reduce_only=True), "flip")],
)
def test_reduce_only_violation(position: float, intent: OrderIntent, word: str) -> None:
    gate, account = make_gate()
    account.positions[BTC] = position
    decision = gate.check(intent, T0, PRICE)
    assert_denied_exactly(gate, decision, DenialReason.REDUCE_ONLY_VIOLATION)
    assert word in decision.detail


def test_reduce_only_that_reduces_or_closes_passes() -> None:
    gate, account = make_gate()
    account.positions[BTC] = 0.3
    assert gate.check(sell(0.1, reduce_only=True), T0, PRICE).approved
    assert gate.check(sell(0.3, reduce_only=True), T0, PRICE).approved
    account.positions[BTC] = 0.1 + 0.2  # 0.30000000000000004: a close within rounding
    assert gate.check(sell(0.3, reduce_only=True), T0, PRICE).approved


def test_max_order_notional_denies_without_resizing() -> None:
    gate, _ = make_gate(max_order_notional=10_000, resize_to_caps=False)
    decision = gate.check(buy(0.2), T0, PRICE)  # 12 000 USDT
    assert_denied_exactly(gate, decision, DenialReason.MAX_ORDER_NOTIONAL)


def test_max_order_notional_resizes_to_the_cap() -> None:
    gate, _ = make_gate(max_order_notional=10_000)
    decision = gate.check(buy(0.2), T0, PRICE)
    assert decision.approved
    assert decision.size == pytest.approx(10_000 / PRICE)
    assert decision.reason is DenialReason.MAX_ORDER_NOTIONAL
    assert "resized" in decision.detail
    assert gate.denials == Counter()
    assert gate.resizes == Counter({DenialReason.MAX_ORDER_NOTIONAL: 1})


def test_max_position_notional_denies_without_resizing() -> None:
    gate, account = make_gate(
        max_order_notional=100_000, max_position_notional=50_000, resize_to_caps=False
    )
    account.positions[BTC] = 0.5  # 30 000 USDT
    decision = gate.check(buy(0.5), T0, PRICE)
    assert_denied_exactly(gate, decision, DenialReason.MAX_POSITION_NOTIONAL)


def test_max_position_notional_resizes_to_the_room_left() -> None:
    gate, account = make_gate(max_order_notional=100_000, max_position_notional=50_000)
    account.positions[BTC] = 0.5
    decision = gate.check(buy(0.5), T0, PRICE)
    assert decision.approved
    assert decision.reason is DenialReason.MAX_POSITION_NOTIONAL
    assert decision.size == pytest.approx(50_000 / PRICE - 0.5)


def test_max_position_notional_on_a_flip_counts_the_new_side_only() -> None:
    gate, account = make_gate(max_order_notional=200_000, max_position_notional=50_000)
    account.positions[BTC] = 0.5
    decision = gate.check(sell(2.0), T0, PRICE)  # would be short 1.5 = 90 000 USDT
    assert decision.approved
    assert decision.size == pytest.approx(0.5 + 50_000 / PRICE)


def test_max_position_notional_denies_when_no_room_is_left() -> None:
    gate, account = make_gate(max_order_notional=100_000, max_position_notional=50_000)
    account.positions[BTC] = 50_000 / PRICE
    decision = gate.check(buy(0.1), T0, PRICE)
    assert_denied_exactly(gate, decision, DenialReason.MAX_POSITION_NOTIONAL)


def test_reducing_orders_are_never_denied_for_position_notional() -> None:
    gate, account = make_gate(max_order_notional=1_000, max_position_notional=5_000)
    account.positions[BTC] = -2.0  # 120 000 USDT short, far over both caps
    decision = gate.check(buy(0.5), T0, PRICE)
    assert decision == RiskDecision(True, 0.5, None, "approved")
    assert gate.check(buy(2.0), T0, PRICE).size == 2.0  # a full close is not cut either


def test_max_leverage_from_configured_symbol_leverage() -> None:
    gate, account = make_gate(max_leverage=10)
    account.leverages[BTC] = 20.0
    decision = gate.check(buy(0.01), T0, PRICE)
    assert_denied_exactly(gate, decision, DenialReason.MAX_LEVERAGE)
    assert "20x" in decision.detail


def test_max_leverage_from_resulting_gross_notional() -> None:
    account = FakeAccount(equity_value=10_000.0, leverages={BTC: 2.0, ETH: 2.0})
    account.positions[ETH] = 5.0
    account.marks[ETH] = 3_000.0  # 15 000 USDT on ETH
    gate, _ = make_gate(account, max_leverage=2, max_order_notional=1e6, max_position_notional=1e6)
    assert gate.check(buy(5_000 / PRICE), T0, PRICE).approved  # 20 000 / 10 000 = 2x
    decision = gate.check(buy(6_000 / PRICE), T0, PRICE)  # 21 000 / 10 000 = 2.1x
    assert_denied_exactly(gate, decision, DenialReason.MAX_LEVERAGE)


def test_insufficient_margin_with_the_default_margin_model() -> None:
    gate, account = make_gate(FakeAccount(available=100.0))
    decision = gate.check(buy(1_000 / PRICE), T0, PRICE)  # 1000 / 5x = 200 USDT margin
    assert_denied_exactly(gate, decision, DenialReason.INSUFFICIENT_MARGIN)
    assert gate.check(buy(500 / PRICE), T0, PRICE).approved  # exactly 100 needed
    account.positions[BTC] = 1.0
    account.available = 0.0
    assert gate.check(sell(0.5), T0, PRICE).approved  # reducing: no margin check


def test_insufficient_margin_counts_the_orders_in_flight() -> None:
    """The available balance has not paid for the buys on their way yet: a buy needing
    60 USDT after one needing 60 is not within the 100 available."""
    gate, _ = make_gate(FakeAccount(available=100.0))
    assert gate.check(buy(300 / PRICE), T0, PRICE).approved  # 300 / 5x = 60 USDT
    decision = gate.check(buy(300 / PRICE), T0, PRICE, in_flight=300 / PRICE)
    assert_denied_exactly(gate, decision, DenialReason.INSUFFICIENT_MARGIN)
    assert "120.00 more initial margin" in decision.detail


def test_insufficient_margin_uses_the_given_margin_model() -> None:
    calls: list[tuple[str, float, float]] = []

    def margin(symbol: str, signed_size: float, price: float) -> float:
        calls.append((symbol, signed_size, price))
        return abs(signed_size) * price * 0.5 + (10.0 if signed_size else 0.0)

    gate, account = make_gate(FakeAccount(available=300.0), margin)
    account.positions[BTC] = 0.001
    decision = gate.check(buy(0.01), T0, PRICE)  # 0.011 -> 340, 0.001 -> 40: needs 300
    assert decision.approved
    assert calls == [(BTC, pytest.approx(0.011), PRICE), (BTC, 0.001, PRICE)]
    decision = gate.check(buy(0.0101), T0, PRICE)
    assert_denied_exactly(gate, decision, DenialReason.INSUFFICIENT_MARGIN)


def test_daily_loss_limit_reduces_until_the_next_utc_day() -> None:
    gate, account = make_gate(daily_loss_limit=0.05, stale_after="2d")
    account.positions[BTC] = 0.1
    assert gate.on_equity(T0 + HOUR, 100_000.0) is None  # first equity of the day
    assert gate.on_equity(T0 + 2 * HOUR, 95_000.0) is None  # exactly 5%: not more than
    assert gate.on_equity(T0 + 3 * HOUR, 94_000.0) is TradingState.REDUCING
    assert gate.on_equity(T0 + 4 * HOUR, 99_000.0) is None  # stays for the rest of the day
    decision = gate.check(buy(0.01), T0 + 4 * HOUR, PRICE)
    assert_denied_exactly(gate, decision, DenialReason.DAILY_LOSS_LIMIT)
    assert "daily loss" in decision.detail
    assert gate.check(sell(0.05), T0 + 4 * HOUR, PRICE).approved  # reducing passes

    # the new UTC day starts from its own first equity
    assert gate.on_equity(T0 + DAY_MS, 99_000.0) is TradingState.ACTIVE
    assert gate.check(buy(0.01), T0 + DAY_MS, PRICE).approved
    assert gate.on_equity(T0 + DAY_MS + HOUR, 94_000.0) is TradingState.REDUCING


def test_max_drawdown_reducing_then_halt() -> None:
    gate, account = make_gate(
        daily_loss_limit=0.9, reducing_drawdown=0.15, max_drawdown=0.20, stale_after="1d"
    )
    account.positions[BTC] = 0.2
    assert gate.on_equity(T0, 100_000.0) is None
    assert gate.on_equity(T0 + 1, 110_000.0) is None  # new peak
    assert gate.on_equity(T0 + 2, 93_500.0) is TradingState.REDUCING  # 15% off 110k
    decision = gate.check(buy(0.01), T0 + 2, PRICE)
    assert_denied_exactly(gate, decision, DenialReason.MAX_DRAWDOWN_HALT)
    assert gate.check(sell(0.1), T0 + 2, PRICE).approved

    assert gate.on_equity(T0 + 3, 88_000.0) is TradingState.HALTED  # 20% off 110k
    decision = gate.check(sell(0.1), T0 + 3, PRICE)  # nothing passes, not even reducing
    assert not decision.approved
    assert decision.reason is DenialReason.MAX_DRAWDOWN_HALT
    assert gate.on_equity(T0 + 4, 105_000.0) is None  # a halt is sticky

    gate.resume()  # the peak restarts at 105 000
    assert gate.state is TradingState.ACTIVE
    assert gate.check(buy(0.01), T0 + 5, PRICE).approved


def test_drawdown_reducing_lifts_when_equity_recovers() -> None:
    gate, _ = make_gate(daily_loss_limit=0.9)
    gate.on_equity(T0, 100_000.0)
    assert gate.on_equity(T0 + 1, 84_000.0) is TradingState.REDUCING
    assert gate.on_equity(T0 + 2, 86_000.0) is TradingState.ACTIVE


def test_reducing_state_cuts_a_flip_to_a_close() -> None:
    gate, account = make_gate(daily_loss_limit=0.05)
    account.positions[BTC] = 0.1
    gate.on_equity(T0, 100_000.0)
    gate.on_equity(T0 + 1, 90_000.0)
    decision = gate.check(sell(0.3), T0 + 1, PRICE)
    assert decision.approved
    assert decision.size == 0.1
    assert decision.reason is DenialReason.DAILY_LOSS_LIMIT


def test_reducing_state_denies_a_flip_when_resizing_is_off() -> None:
    gate, account = make_gate(daily_loss_limit=0.05, resize_to_caps=False)
    account.positions[BTC] = 0.1
    gate.on_equity(T0, 100_000.0)
    gate.on_equity(T0 + 1, 90_000.0)
    decision = gate.check(sell(0.3), T0 + 1, PRICE)
    assert_denied_exactly(gate, decision, DenialReason.DAILY_LOSS_LIMIT)


def test_reducing_state_counts_the_closes_in_flight() -> None:
    """Long 0.1 with a sell of 0.1 on its way: another plain sell of 0.1 flips the
    position to -0.1 once both fill, an exposure the REDUCING state must not let in;
    a bigger sell is cut to what the one in flight leaves to close."""
    gate, account = make_gate(daily_loss_limit=0.05)
    account.positions[BTC] = 0.1
    gate.on_equity(T0, 100_000.0)
    gate.on_equity(T0 + 1, 90_000.0)
    decision = gate.check(sell(0.1), T0 + 1, PRICE, in_flight=0.1)
    assert_denied_exactly(gate, decision, DenialReason.DAILY_LOSS_LIMIT)
    decision = gate.check(sell(0.3), T0 + 1, PRICE, in_flight=0.04)
    assert decision.approved
    assert decision.size == pytest.approx(0.06)
    # a reduce-only order is judged on the position held: the venue clips it
    assert gate.check(sell(0.1, reduce_only=True), T0 + 1, PRICE, in_flight=0.1).approved


def test_a_close_already_in_flight_makes_another_one_an_increase() -> None:
    """Two plain closes of one long make a short: the second is held to the caps."""
    gate, account = make_gate(max_position_notional=1_000.0, resize_to_caps=False)
    account.positions[BTC] = 0.1  # 6 000 (held before the cap was lowered)
    decision = gate.check(sell(0.1), T0, PRICE, in_flight=0.1)
    assert_denied_exactly(gate, decision, DenialReason.MAX_POSITION_NOTIONAL)
    assert gate.check(sell(0.1), T0, PRICE).approved  # alone it is a close


def test_non_positive_size_is_refused_below_the_minimum_quantity() -> None:
    """No order the instrument trades; without a code the denials table took it for a
    venue's rejection (VENUE_REJECTED)."""
    gate, _ = make_gate()
    decision = gate.check(buy(0.0), T0, PRICE)
    assert (decision.approved, decision.reason) == (False, DenialReason.BELOW_MIN_QUANTITY)
    assert gate.denials == Counter({DenialReason.BELOW_MIN_QUANTITY: 1})


# ---- canary caps ------------------------------------------------------------------------


def test_canary_profile_caps_hold_whatever_the_strategy_asks() -> None:
    settings = load_settings("canary", profiles_dir=REPO / "config" / "profiles")
    risk = settings.risk
    assert (risk.max_order_notional, risk.max_position_notional, risk.max_leverage) == (50, 50, 2)
    account = FakeAccount(equity_value=500.0, available=500.0, leverages={BTC: 2.0})
    gate = RiskGate(risk, account)
    gate.on_market_data(BTC, T0)

    decision = gate.check(buy(1.0), T0, PRICE)  # a 60 000 USDT order
    assert decision.approved
    assert decision.size * PRICE == pytest.approx(50.0)

    account.positions[BTC] = decision.size
    decision = gate.check(buy(1.0), T0 + 1_000, PRICE)  # position already at the cap
    assert not decision.approved
    assert decision.reason is DenialReason.MAX_POSITION_NOTIONAL

    account.leverages[BTC] = 5.0  # someone raised leverage on the exchange
    account.positions[BTC] = 0.0
    decision = gate.check(buy(0.0001), T0 + 2_000, PRICE)
    assert decision.reason is DenialReason.MAX_LEVERAGE


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 3 * 60), st.integers(-40, 40)), min_size=1, max_size=120
    ),
    limits=st.sampled_from([(0.05, 0.20, 0.15), (0.02, 0.10, 0.05), (0.5, 0.3, 0.3)]),
)
def test_trading_state_follows_the_documented_rules_on_any_equity_path(
    steps: list[tuple[int, int]], limits: tuple[float, float, float]
) -> None:
    """Whatever the gate skips between thresholds, its state after every equity update
    is the one the documented rules give (recomputed here from scratch): daily loss
    against the day's first equity, drawdown from the running peak, HALTED sticky."""
    daily_limit, max_dd, reducing_dd = limits
    gate, _ = make_gate(
        daily_loss_limit=daily_limit, max_drawdown=max_dd, reducing_drawdown=reducing_dd
    )
    ts, equity = 0, 1_000.0
    day, start, peak, daily, halted = None, 0.0, None, False, False
    for minutes, move in steps:
        ts += minutes * 60_000 * 10  # up to 30 h per step: days roll over too
        equity = max(1.0, equity + move * 2.5)
        gate.on_equity(ts, equity)
        if ts // DAY_MS != day:
            day, start, daily = ts // DAY_MS, equity, False
        daily = daily or (start - equity) > daily_limit * start
        peak = equity if peak is None or equity > peak else peak
        drawdown = (peak - equity) / peak
        halted = halted or drawdown >= max_dd
        expected = (
            TradingState.HALTED
            if halted
            else TradingState.REDUCING
            if drawdown >= reducing_dd or daily
            else TradingState.ACTIVE
        )
        assert gate.state is expected, (ts, equity, peak, start)


# ---- the price a limit order is valued at -------------------------------------------


def limit(side: Side, size: float, at: float) -> OrderIntent:
    return OrderIntent(BTC, side, size, OrderType.LIMIT, limit_price=at)


def test_a_sell_limit_above_the_last_price_is_valued_at_its_limit() -> None:
    """It fills at its limit (or higher), not at the last price: a short opened at 120
    holds 120's notional, and the exchange counts the order's notional there too."""
    gate, _ = make_gate(max_order_notional=50, max_position_notional=1e9, resize_to_caps=False)
    decision = gate.check(limit(Side.SELL, 0.45, 120.0), T0, 100.0)  # 54 at its limit
    assert_denied_exactly(gate, decision, DenialReason.MAX_ORDER_NOTIONAL)

    gate, account = make_gate(max_order_notional=1e9, max_position_notional=50)
    account.positions[BTC] = -0.2
    decision = gate.check(limit(Side.SELL, 0.45, 125.0), T0, 100.0)
    assert decision.approved and decision.reason is DenialReason.MAX_POSITION_NOTIONAL
    assert (0.2 + decision.size) * 125.0 == pytest.approx(50.0)


def test_a_limit_that_fills_at_the_last_price_or_better_is_valued_there() -> None:
    """A sell limit below the last price fills at about the last price, a buy limit
    below it at its limit (less): the last price bounds both."""
    gate, _ = make_gate(max_order_notional=50, resize_to_caps=False)
    assert not gate.check(limit(Side.SELL, 0.55, 80.0), T0, 100.0).approved  # 55 at 100
    assert not gate.check(limit(Side.BUY, 0.55, 80.0), T0, 100.0).approved
    assert gate.check(limit(Side.BUY, 0.45, 120.0), T0, 100.0).approved  # fills near 100
