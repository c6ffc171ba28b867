"""A strategy's promise that the orchestrator may walk stretches past it
(`candle_stretches`, `quote_stretches`) holds only for the code that made it: a
subclass that overrides `on_event` or `candle_run` (to read quotes, say) does not
inherit it unless it makes the promise again itself."""

from collections.abc import Sequence

from perps_bot.domain import MarketEvent, Signal
from perps_bot.strategies import NO_SIGNALS, Strategy
from perps_bot.strategies.funding_carry import FundingCarry
from perps_bot.strategies.mean_reversion import MeanReversion
from perps_bot.strategies.sma_cross import SmaCross

PROMISES = ("candle_stretches", "quote_stretches")


class Tuned(SmaCross):
    """Other defaults, same code: the promises still hold."""


class CountsQuotes(SmaCross):
    def on_event(self, event: MarketEvent) -> Sequence[Signal]:
        return super().on_event(event)


class CountsQuotesAndSaysSo(CountsQuotes):
    quote_stretches = False
    candle_stretches = True  # it checked: candles are all it reads


class Plain(Strategy):
    name = "plain"

    def on_event(self, event: MarketEvent) -> Sequence[Signal]:
        return NO_SIGNALS


def test_the_built_in_strategies_keep_both_promises() -> None:
    for strategy in (SmaCross, MeanReversion, FundingCarry, Tuned):
        assert all(strategy.keeps(p) for p in PROMISES), strategy


def test_overriding_on_event_drops_the_inherited_promises() -> None:
    assert not any(CountsQuotes.keeps(p) for p in PROMISES)


def test_a_subclass_makes_its_own_promises() -> None:
    assert CountsQuotesAndSaysSo.keeps("candle_stretches")
    assert not CountsQuotesAndSaysSo.keeps("quote_stretches")


def test_a_strategy_that_promises_nothing_keeps_nothing() -> None:
    assert not any(Plain.keeps(p) for p in PROMISES)
