"""What each strategy asks for to be warmed up (`warmup_bars`) and what a warm-up bar
does to it (`warm_up`): its indicators learn, it takes no side and signals nothing, and
the first live bar acts on what they learnt. On main there was no warm-up."""

import random

import pytest

from perps_bot.strategies import FundingCarry, MeanReversion, SmaCross, Strategy
from tests.strategies.sample_strategy import MyStrategy
from tests.strategies.test_builtin_strategies import (
    SYM,
    FakeAccount,
    candle,
    make_ctx,
    targets,
)


def warm(strategy: Strategy, closes: list[float]) -> int:
    """Warm `strategy` up on `closes` (bars 0..n-1); the next bar's index."""
    for i, close in enumerate(closes):
        strategy.warm_up(candle(i, close))
    return len(closes)


def test_each_strategy_asks_for_its_longest_window_and_the_others_for_none() -> None:
    ctx = make_ctx()
    assert SmaCross({"fast": 10, "slow": 30}, ctx).warmup_bars() == 30
    assert MeanReversion({"lookback": 20}, ctx).warmup_bars() == 20
    assert MeanReversion({"mode": "rsi", "rsi_period": 14}, ctx).warmup_bars() == 155
    assert FundingCarry({}, ctx).warmup_bars() == 0
    assert MyStrategy({}, ctx).warmup_bars() == 0  # third party: none unless it says so


def test_sma_cross_warmed_through_a_cross_takes_no_side_and_enters_on_the_next_cross() -> None:
    strategy = SmaCross({"fast": 2, "slow": 3}, make_ctx(size=0.5))
    strategy.on_start()
    # up regime at bar 3, crossed down at bar 5: a cold run would have shorted there
    after = warm(strategy, [10, 10, 10, 13, 7, 7])
    fast, slow = strategy.plot_values(SYM) or ()
    assert (fast, slow) == (7.0, 9.0)
    assert strategy.state()[SYM].side == 0  # type: ignore[index]
    # the first live bar crosses up (fast 11.5 > slow 10): it enters at once
    signals = strategy.on_event(candle(after, 16))
    assert targets({0: list(signals)}) == {0: (0.5, "sma_cross up 2/3")}


def test_sma_cross_warmed_regime_with_no_cross_keeps_a_flat_start_flat() -> None:
    strategy = SmaCross({"fast": 2, "slow": 3}, make_ctx())
    strategy.on_start()
    after = warm(strategy, [10, 11, 12, 13])  # up regime
    assert not strategy.on_event(candle(after, 14))  # still up: no cross, nothing held


def test_sma_cross_flips_a_held_position_against_the_warmed_regime_at_the_first_bar() -> None:
    account = FakeAccount(positions={SYM: -0.5}, entries={SYM: 12.0})
    strategy = SmaCross({"fast": 2, "slow": 3}, make_ctx(account, size=0.5))
    after = warm(strategy, [10, 11, 12, 13])  # up regime, before the start
    strategy.on_start()  # adopts the short the exchange holds
    signals = strategy.on_event(candle(after, 14))
    assert targets({0: list(signals)}) == {
        0: (0.5, "sma_cross up 2/3 (against the position held at start)")
    }
    assert not strategy.on_event(candle(after + 1, 15))  # then crosses only


def test_mean_reversion_warm_up_enters_nothing_and_the_first_extreme_bar_enters() -> None:
    strategy = MeanReversion({"lookback": 5, "entry_z": 1.5}, make_ctx(size=0.5))
    strategy.on_start()
    after = warm(strategy, [100, 101, 99, 100, 60])  # z of 60 is an extreme: not acted on
    assert strategy.state()[SYM].side == 0  # type: ignore[index]
    assert strategy.plot_values(SYM) is not None  # the window is full
    signals = strategy.on_event(candle(after, 140))
    ((size, reason),) = targets({0: list(signals)}).values()
    assert size == -0.5 and reason.startswith("mean_reversion short z=")


def test_a_third_party_strategy_that_declares_bars_is_shown_them_and_its_signal_dropped() -> None:
    class Declares(MyStrategy):
        def warmup_bars(self) -> int:
            return 2

    strategy = Declares({"level": 1.0}, make_ctx())
    assert strategy.warmup_bars() == 2
    assert strategy.on_event(candle(0, 5.0))  # a live bar above the level buys
    assert strategy.warm_up(candle(1, 5.0)) is None  # a warm-up bar: nothing handed on


def test_mean_reversion_rsi_warmed_up_reads_what_a_run_through_that_history_reads() -> None:
    """Wilder's RSI smooths over all it has seen: warmed up on its first value's
    rsi_period + 1 bars only, the first live bar's RSI was the seed's, up to 24 points
    from that of a run that had seen the history (a backtest of the same time), so its
    entries at 30 / 70 were not that run's. It now asks for bars enough that the seed's
    weight has died out (11 x rsi_period + 1: (13/14)^140 of it is left for 14)."""
    rng = random.Random(5)
    closes = [100.0]
    for _ in range(700):
        closes.append(closes[-1] * (1 + rng.gauss(0, 0.003)))
    params = {"mode": "rsi", "rsi_period": 14}
    through = MeanReversion(params, make_ctx())
    for i, close in enumerate(closes[:600]):
        through.on_event(candle(i, close))
    warmed = MeanReversion(params, make_ctx())
    bars = warmed.warmup_bars()
    assert bars <= 600
    for i, close in enumerate(closes[600 - bars : 600]):
        warmed.warm_up(candle(i, close))
    a, b = through.state()[SYM].rsi, warmed.state()[SYM].rsi  # type: ignore[index]
    for close in closes[600:]:
        assert b.push(close) == pytest.approx(a.push(close), abs=0.01)
