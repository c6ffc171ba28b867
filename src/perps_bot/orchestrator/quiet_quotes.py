"""Quiet stretches of quotes: most ticks of the mock exchange under `--dev-fast` (the
dev profile, the session server's paper sessions) without a call per stage per tick
(issue 17). Realtime runs get one tick per batch and keep the per-event loop.

Most ticks only move prices: no order of the symbol rests or waits in the venue, the
mark stays inside the band where the ledger cannot liquidate, no bar closes, no
equity snapshot is due, and the strategy does nothing with a quote (it declares
`quote_stretches`). The feed hands its ticks over as columns (`QuoteColumns`); the
orchestrator finds how many whole ticks, all symbols together, are quiet (bisecting
the times for the next snapshot and bar close, scanning the marks against the bands),
builds no Quote for them, and hands the stages once what they need from the whole run
of them (`_catch_up_quotes`):

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
something pending (signals, cancels, venue updates) go through `_on_event` as before,
as a Quote built for it alone.
The stored fills, orders, equity curve, excursions, funding, chart samples and the
journal are the same bytes as one tick at a time
(tests/orchestrator/test_quiet_quotes.py runs each case three ways). Several
portfolios side by side take it together: a stretch holds while every symbol's mark
is inside the band of every portfolio trading it, and no strategy reads quotes; one
symbol with work to do (a resting order, no band) sends every tick the full way.
"""

from bisect import bisect_left
from math import isfinite

from perps_bot.feeds.bars import BarBuilder
from perps_bot.feeds.quote_columns import QuoteColumns, QuoteLists
from perps_bot.orchestrator.portfolio import Portfolio
from perps_bot.orchestrator.quiet import NO_ORDERS, QuietStretches

_INF = float("inf")


class _SymbolRun:
    """What a stretch's ticks of one symbol leave behind for the stages."""

    __slots__ = ("band_high", "band_low", "closes_at", "high", "last", "low", "mark", "portfolios")

    def __init__(
        self, band: tuple[float, float], closes_at: float, portfolios: tuple[Portfolio, ...]
    ) -> None:
        self.band_low, self.band_high = band  # inside every trading portfolio's band
        self.closes_at = closes_at  # the open bar's close time: that tick closes it
        self.portfolios = portfolios
        self.low = self.high = self.last = self.mark = 0.0  # set from the stretch's ticks


def _first_outside(column: QuoteLists, low: float, high: float, first: int, limit: int) -> int:
    """The first tick from `first` whose mark is not strictly inside (low, high) or
    whose price is not a positive number; `limit` when there is none. The common case
    (all inside) is settled by min, max and sum in C; min and max alone would let a NaN
    through, a finite sum rules it (and infinities) out."""
    marks, prices = column.mark[first:limit], column.last[first:limit]
    if (
        marks
        and low < min(marks)
        and max(marks) < high
        and min(prices) > 0.0
        # 0.0 to start: compiled (mypyc), sum() + sum() of floats was taken for ints
        and isfinite(sum(marks, 0.0) + sum(prices, 0.0))
    ):
        return limit
    for k, (mark, price) in enumerate(zip(marks, prices, strict=True)):
        if not (low < mark < high and price > 0.0):
            return first + k
    return limit


class QuietQuotes(QuietStretches):
    """A mixin of `Orchestrator` (orchestrator.engine); attributes are the engine's."""

    _bars: BarBuilder | None
    _by_symbol: dict[str, tuple[Portfolio, ...]]

    def _takes_quote_stretches(self) -> bool:
        """Whether this run can ever take a quiet stretch of quotes."""
        return all(type(p.strategy).keeps("quote_stretches") for p in self.portfolios)

    async def _walk_quotes(self, block: QuoteColumns, end: int) -> bool:
        """Every event of `block` in the feed's order; False once the run's end is
        reached (like the per-event loop). A quote stretch sends no orders: it ends
        before any stage could act."""
        return await self._walk_batch(
            block, end, lambda i, at: (self._quote_stretch(block, i, at, end), NO_ORDERS, 0.0)
        )

    def _quote_stretch(self, block: QuoteColumns, i: int, j: int, end: int) -> int:
        """Whole ticks from quote i (the first of its tick) to quote j at most, as far
        as they are quiet; returns the quote index after them (i: none, the caller
        takes quote i alone)."""
        width = block.width
        next_equity = self._next_equity
        if (
            i % width
            or next_equity is None  # before the first event
            or self._signalled
            or self._cancel_due
            or self._updates
        ):
            return i
        ts = block.ts
        first = i // width
        # the ticks before a snapshot is due or the run ends, before a bar closes, and
        # before a mark outside a band (or a price that is not one) of any symbol
        limit = bisect_left(ts, min(next_equity, end), first, j // width)
        runs: dict[str, _SymbolRun] = {}
        for symbol in block.symbols:  # every symbol's cheap checks before any scan
            run = self._symbol_run(symbol)
            if run is None:
                return i
            runs[symbol] = run
            limit = bisect_left(ts, run.closes_at, first, limit)
        for run, column in zip(runs.values(), block.columns, strict=True):
            limit = _first_outside(column, run.band_low, run.band_high, first, limit)
        if limit == first:
            return i
        last_tick = limit - 1
        for run, column in zip(runs.values(), block.columns, strict=True):
            prices = column.last[first:limit]
            run.low, run.high = min(prices), max(prices)
            run.last, run.mark = prices[-1], column.mark[last_tick]
        self._catch_up_quotes(runs, ts[last_tick])
        return limit * width

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

    def _catch_up_quotes(self, runs: dict[str, _SymbolRun], last_ts: int) -> None:
        """The stages that need only the stretch's extremes and last values (a chunk's
        ticks are in time order: the last is the latest)."""
        self.clock.advance(last_ts)
        self.last_ts = last_ts
        bars = self._bars
        for symbol, run in runs.items():
            if bars is not None:
                bars.fold(symbol, run.low, run.high, run.last, run.mark)
            # the symbols' ticks share their times: each one's last is last_ts
            moved = (run.low, run.high, run.last, run.mark)
            self._prices_moved(run.portfolios, symbol, last_ts, *moved)
