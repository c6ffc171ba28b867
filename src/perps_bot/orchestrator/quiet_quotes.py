"""Quiet stretches of quotes: most ticks of a paper run (the dev profile's mock
exchange, a dry run's quotes) without a call per stage per tick (issue 17).

Most ticks only move prices: no order of the symbol rests or waits in the venue, the
mark stays inside the band where the ledger cannot liquidate, no bar closes, no
equity snapshot is due, and the strategy does nothing with a quote (it declares
`quote_stretches`). For such ticks the orchestrator keeps, per symbol, only what the
stages need from the whole run of them, and hands it over once at the stretch's end
(`_catch_up_quotes`):

  execution  nothing (`venue.quiet(symbol)` said so before the stretch)
  bars       the open bar takes the run's lowest and highest price, its last price
             and last mark (`BarBuilder.fold`: high and low are picks, so the same
             floats as one update per tick); a tick at or after the bar's close takes
             the full path, which closes it and hands the strategy the bar
  risk       the symbol's data time: the last tick's
  excursions the trade's worst and best prices are monotone in the lowest and highest
             price, so one update with them is exact
  ledger     `quiet_mark_band`: the stretch stops before a mark outside it, which then
             takes `update_mark` (liquidation check); inside, only the last is recorded
  clock      the last tick's time, and the last price per symbol

A funding event, a tick with an equity snapshot due, the run's end, and any tick with
something pending (signals, cancels, venue updates) go through `_on_event` as before.
The stored fills, orders, equity curve, excursions, funding, chart samples and the
journal are the same bytes as one tick at a time
(tests/orchestrator/test_quiet_quotes.py runs each case three ways). Several
portfolios side by side take it together: a symbol's stretch holds while its mark is
inside the band of every portfolio trading it and no strategy reads quotes.
"""

from collections.abc import Sequence

from perps_bot.domain import MarketEvent, Quote
from perps_bot.feeds.bars import BarBuilder
from perps_bot.orchestrator.portfolio import Portfolio
from perps_bot.orchestrator.quiet import QuietStretches

_INF = float("inf")


class _SymbolRun:
    """What a stretch's ticks of one symbol leave behind for the stages."""

    __slots__ = (
        "band_high", "band_low", "closes_at", "high", "last", "low", "mark", "portfolios", "ts"
    )  # fmt: skip

    def __init__(
        self, band: tuple[float, float], closes_at: float, portfolios: tuple[Portfolio, ...]
    ) -> None:
        self.band_low, self.band_high = band  # inside every trading portfolio's band
        self.closes_at = closes_at  # the open bar's close time: that tick closes it
        self.portfolios = portfolios
        self.low, self.high = _INF, -_INF
        self.last = self.mark = 0.0
        self.ts = 0


_UNSEEN = _SymbolRun((0.0, 0.0), 0.0, ())  # a symbol the stretch has not looked at yet


def quotes_first(batch: Sequence[MarketEvent]) -> bool:
    """A batch of quotes (the mock exchange's); books, marks and trades (exchange feeds,
    replays) keep the plain per-event loop, which has nothing to try first."""
    return bool(batch) and type(batch[0]) is Quote


class QuietQuotes(QuietStretches):
    """A mixin of `Orchestrator` (orchestrator.engine); attributes are the engine's."""

    _bars: BarBuilder | None
    _by_symbol: dict[str, tuple[Portfolio, ...]]

    def _takes_quote_stretches(self) -> bool:
        """Whether this run can ever take a quiet stretch of quotes."""
        return all(p.strategy.quote_stretches for p in self.portfolios)

    async def _walk_quotes(self, events: Sequence[MarketEvent], end: int) -> bool:
        """Every event of a batch in order; False once the run's end is reached (like
        the per-event loop)."""
        i, n = 0, len(events)
        while i < n:
            done = self._quote_stretch(events, i, end)
            if done > i:
                i = done
                continue
            if not await self._event(events[i], end):
                return False
            i += 1
        return True

    def _quote_stretch(self, events: Sequence[MarketEvent], i: int, end: int) -> int:
        """Quotes from i on as far as they are quiet; returns the index after the last
        one handled (i: none, the caller takes event i alone)."""
        next_equity = self._next_equity
        if (
            next_equity is None  # before the first event
            or self._signalled
            or self._cancel_due
            or self._updates
        ):
            return i
        stop_ts = min(next_equity, end)
        runs: dict[str, _SymbolRun | None] = {}
        latest = 0  # the clock takes the latest time, as one tick at a time
        k, n = i, len(events)
        while k < n:
            event = events[k]
            if type(event) is not Quote:
                break
            ts = event.ts
            if ts >= stop_ts:
                break
            symbol = event.symbol
            run = runs.get(symbol, _UNSEEN)
            if run is _UNSEEN:
                run = runs[symbol] = self._symbol_run(symbol)
            if run is None:
                break
            last, mark = event.last, event.mark
            if not (last > 0.0 and run.band_low < mark < run.band_high and ts < run.closes_at):
                break
            if last < run.low:
                run.low = last
            if last > run.high:
                run.high = last
            run.last, run.mark, run.ts = last, mark, ts
            if ts > latest:
                latest = ts
            k += 1
        if k > i:
            self._catch_up_quotes(runs, latest, events[k - 1].ts)
        return k

    def _symbol_run(self, symbol: str) -> _SymbolRun | None:
        """The stretch's view of `symbol`; None when its ticks must take the full path:
        the venue has work for it, a ledger trading it has no band for its mark, or it
        is new (no bar open, no last price yet: the first tick orders the books' keys)."""
        portfolios = self._by_symbol.get(symbol)
        if not portfolios or symbol not in self._last_price or not self.venue.quiet(symbol):
            return None
        closes_at = _INF if self._bars is None else self._bars.open_until(symbol)
        if closes_at is None:
            return None
        low, high = 0.0, _INF
        for p in portfolios:
            band = p.ledger.quiet_mark_band(symbol)
            if band is None:
                return None
            low, high = max(low, band[0]), min(high, band[1])
        return _SymbolRun((low, high), closes_at, portfolios)

    def _catch_up_quotes(
        self, runs: dict[str, _SymbolRun | None], latest: int, last_ts: int
    ) -> None:
        """The stages that need only the stretch's extremes and last values."""
        self.clock.advance(latest)
        self.last_ts = last_ts
        bars = self._bars
        for symbol, run in runs.items():
            if run is None or run.high < run.low:
                continue  # no tick of it was taken
            self._last_price[symbol] = run.last
            if bars is not None:
                bars.fold(symbol, run.low, run.high, run.last, run.mark)
            for p in run.portfolios:
                p.risk.on_market_data(symbol, run.ts)
                p.excursions.on_prices(symbol, run.low, run.high)
                p.ledger.mark_quietly(symbol, run.mark)
