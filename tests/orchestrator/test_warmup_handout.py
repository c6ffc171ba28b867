"""Which warm-up bars each strategy is shown (orchestrator.warmup): the last it asks for
of its own symbols, oldest first across symbols; on a resumed run only those that closed
while it was down (from the bar it was building, which the candle replaces, or from its
last event), so a resumed replay is not shown its recorded warm-up twice. On main there
was no warm-up."""

import logging
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from perps_bot.domain import Candle
from perps_bot.feeds.bars import BarBuilder
from tests.interpreted import interpreted

WarmUp = interpreted("perps_bot.orchestrator.warmup").WarmUp

MINUTE = 60_000


def bar(symbol: str, i: int) -> Candle:
    return Candle(ts=(i + 1) * MINUTE, symbol=symbol, open_time=i * MINUTE, open=1.0,
                  high=1.0, low=1.0, close=float(i), volume=1.0)  # fmt: skip


class Source:
    """A warm-up source of bars 0..9 of every symbol asked for."""

    def __init__(self) -> None:
        self.asked: list[dict[str, int]] = []

    async def warmup_candles(
        self, bars: Mapping[str, int], timeframe_ms: int
    ) -> dict[str, list[Candle]]:
        self.asked.append(dict(bars))
        return {s: [bar(s, i) for i in range(10)][-n:] for s, n in bars.items()}


class Learner:
    name = "learner"

    def __init__(self, wants: int) -> None:
        self.wants = wants
        self.seen: list[tuple[str, float]] = []

    def warmup_bars(self) -> int:
        return self.wants

    def warm_up(self, candle: Candle) -> None:
        self.seen.append((candle.symbol, candle.close))


class Loop(WarmUp):
    def __init__(self, portfolios: list[Any], *, resumed: bool = False, last: int | None = None):
        self.feed = Source()  # type: ignore[assignment]
        self.portfolios = portfolios
        self.log = logging.getLogger("test")
        self.resumed = resumed
        self.last_ts = last
        self._bars = BarBuilder(MINUTE)


def portfolio(wants: int, *symbols: str) -> Any:
    return SimpleNamespace(strategy=Learner(wants), symbols=frozenset(symbols))


async def test_each_strategy_is_shown_the_last_bars_it_asks_for_oldest_first() -> None:
    a, b, none = portfolio(3, "ETH", "BTC"), portfolio(5, "ETH"), portfolio(0, "SOL")
    loop = Loop([a, b, none])
    await loop.warm_up()
    assert loop.feed.asked == [{"BTC": 3, "ETH": 5}]  # type: ignore[attr-defined]
    assert a.strategy.seen == [("BTC", 7.0), ("ETH", 7.0), ("BTC", 8.0), ("ETH", 8.0),
                               ("BTC", 9.0), ("ETH", 9.0)]  # fmt: skip
    assert b.strategy.seen == [("ETH", float(i)) for i in range(5, 10)]
    assert none.strategy.seen == []


async def test_strategies_that_ask_for_nothing_make_no_request() -> None:
    loop = Loop([portfolio(0, "ETH")])
    await loop.warm_up()
    assert loop.feed.asked == []  # type: ignore[attr-defined]


async def test_a_resumed_run_is_shown_what_closed_from_the_bar_it_was_building() -> None:
    p = portfolio(10, "ETH", "BTC")
    loop = Loop([p], resumed=True, last=6 * MINUTE + 5_000)
    assert loop._bars is not None
    loop._bars.update("ETH", 7 * MINUTE + 1_000, 1.0, 1.0)  # building bar 7 when it stopped
    await loop.warm_up()
    # ETH: from bar 7 (the candle replaces the bar it was building); BTC, no bar being
    # built: from the bar of its last event (6)
    assert p.strategy.seen == [("BTC", 6.0), ("BTC", 7.0), ("ETH", 7.0), ("BTC", 8.0),
                               ("ETH", 8.0), ("BTC", 9.0), ("ETH", 9.0)]  # fmt: skip
    assert loop._bars.open_until("ETH") is None


async def test_a_resumed_run_that_missed_nothing_keeps_the_bar_it_was_building() -> None:
    p = portfolio(10, "ETH")
    loop = Loop([p], resumed=True, last=10 * MINUTE + 5_000)
    assert loop._bars is not None
    loop._bars.update("ETH", 10 * MINUTE + 1_000, 1.0, 1.0)  # bar 10 is still open
    await loop.warm_up()
    assert p.strategy.seen == []
    assert loop._bars.open_until("ETH") == 11 * MINUTE
