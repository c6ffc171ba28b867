"""Warming the strategies up at the start of an exchange-fed run (dry run, live, their
replays, and the sessions the server starts of them): their indicators are ready at
the first live bar instead of a slow window's worth of bars later, as in a backtest of
the same time.

The bars come from the feed, the run's one source of market data (`WarmUpSource`: the
exchange's closed candles of `strategy.timeframe`, recorded in the capture; a replay's
are the recorded ones), and go to each strategy's `warm_up`: the strategy learns from
them and nothing else happens (no signal is asked for, no order, no ledger entry, no
journal line). Each strategy says how many it needs (`warmup_bars`, at most
MAX_WARMUP_BARS); one that says none (funding_carry, the plan strategies, third-party
ones by default) gets none, and a run whose strategies need none asks for nothing.
Feeds of history and the random walk have no warm-up source: dev runs and backtests
are untouched.

Once, before `on_start` (which then adopts the account's positions, so a restarted live
bot compares what it holds with the warmed-up regime). A resumed run warms up on the
candles that closed while it was down: those from the bar it was building when it
stopped (which the exchange's closed candle of that time replaces) on.

A mixin of `Orchestrator` (orchestrator.engine); the attributes below are the engine's.
"""

import logging

from mypy_extensions import trait

from perps_bot.domain import Candle, iso_utc
from perps_bot.feeds import Feed
from perps_bot.feeds.bars import BarBuilder
from perps_bot.feeds.base import WarmUpSource
from perps_bot.orchestrator.portfolio import Portfolio
from perps_bot.strategies import MAX_WARMUP_BARS, Strategy
from perps_bot.strategies.base import strategy_label


@trait  # one of `Orchestrator`'s parts: the compiled hot path takes parts as traits
class WarmUp:
    feed: Feed
    portfolios: list[Portfolio]
    log: logging.Logger
    resumed: bool
    last_ts: int | None
    _bars: BarBuilder | None
    #: the close of each symbol's last warm-up bar, until its first live bar (live_edge)
    _warm_ends: dict[str, int]

    async def warm_up(self) -> None:
        """Hand every strategy the closed bars it asks for (module doc)."""
        bars, feed = self._bars, self.feed
        if bars is None or not isinstance(feed, WarmUpSource):
            return
        wanted: dict[str, int] = {}
        for p in self.portfolios:
            count = bars_wanted(p.strategy, self.log)
            for symbol in sorted(p.symbols):
                wanted[symbol] = max(wanted.get(symbol, 0), count)
        wanted = {symbol: count for symbol, count in wanted.items() if count > 0}
        if not wanted:
            return
        candles = await feed.warmup_candles(wanted, bars.timeframe_ms)
        if self.resumed:  # what closed while it was down, its strategies knew the rest
            for symbol, got in candles.items():
                since = self._resumed_since(bars, symbol)
                got = candles[symbol] = [c for c in got if c.open_time >= since]
                if got:  # the bar it was building (if any) is closed: the candle replaces it
                    bars.drop(symbol)
        for p in self.portfolios:
            self._warm(p, candles)
        self._warm_ends = {symbol: got[-1].ts for symbol, got in candles.items() if got}

    def live_edge(self, bar: Candle) -> None:
        """A closed live bar (the engine calls this while `_warm_ends` has symbols): the
        first of its symbol says when it does not follow that symbol's warm-up (its first
        prices came bars later: on_start's orders, an exchange failing the first polls),
        a gap in the strategies' series no bar fills."""
        end = self._warm_ends.pop(bar.symbol, None)
        if end is None or bar.open_time <= end:
            return
        missing = (bar.open_time - end) // (bar.ts - bar.open_time)
        self.log.warning("warm-up: the live bars of %s start at %s, %d bar%s after the last"
                         " warm-up bar closed (%s): the strategies' series has a gap there",
                         bar.symbol, iso_utc(bar.open_time), missing,
                         "" if missing == 1 else "s", iso_utc(end))  # fmt: skip

    def _resumed_since(self, bars: BarBuilder, symbol: str) -> int:
        """The open time of the first bar of `symbol` a resumed run's strategies have not
        seen: the one it was building when it stopped, else the one of its last event (a
        replay's recorded warm-up is all older: a resumed replay gets none again)."""
        building = bars.open_until(symbol)
        if building is not None:
            return int(building) - bars.timeframe_ms
        last = self.last_ts or 0
        return last - last % bars.timeframe_ms

    def _warm(self, p: Portfolio, candles: dict[str, list[Candle]]) -> None:
        count = bars_wanted(p.strategy, None)
        if count <= 0:
            return
        mine = [c for symbol in sorted(p.symbols) for c in candles.get(symbol, [])[-count:]]
        if not mine:
            return
        mine.sort(key=lambda c: c.ts)  # as live bars come: by close time, symbols in turn
        warm_up = p.strategy.warm_up
        for candle in mine:
            warm_up(candle)
        symbols = ", ".join(sorted({c.symbol for c in mine}))
        label = strategy_label(type(p.strategy))
        self.log.info("warm-up: %s learnt from %d closed bars of %s (%d wanted per symbol)",
                      label, len(mine), symbols, count)  # fmt: skip


def bars_wanted(strategy: Strategy, log: logging.Logger | None) -> int:
    """The strategy's `warmup_bars`, at most MAX_WARMUP_BARS (`log`: say when capped)."""
    asked = int(strategy.warmup_bars())
    if asked > MAX_WARMUP_BARS and log is not None:
        log.info("warm-up: %s asks for %d bars; it gets the last %d",
                 strategy_label(type(strategy)), asked,
                 MAX_WARMUP_BARS)  # fmt: skip
    return min(max(asked, 0), MAX_WARMUP_BARS)
