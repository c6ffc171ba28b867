"""The orchestrator: every market event goes through the same stages, whatever the
mode (SPEC 2):

  feed -> execution venue matches what was resting (fills -> ledger)
       -> ledger marks to market (liquidations, paper modes) and settles funding
       -> strategy (signals) -> risk gate (approve / resize / deny)
       -> instrument rules -> execution venue (orders) -> ledger and metrics

Venue, feed and instruments are injected; nothing here knows which mode runs. The
per-event path is synchronous and allocation-light (a backtest pushes millions of
events through it); only order submission and live polling are awaited. Order
lifecycle changes the venue reports (`venue.updates`) are drained after every call
into the venue: stored, journaled, and shown to the strategy (`on_order_update`).

This module is the loop itself; its mixins hold the rest: the venue calls (sending,
polling, reconciling: orchestrator.venue_calls), quiet candle and quote stretches
(orchestrator.quiet, orchestrator.quiet_quotes), candles walked along their path
(orchestrator.long_candles, orchestrator.candle_walks), the equity rows
(orchestrator.equity_rows), the loop's part of a checkpoint
(orchestrator.loop_checkpoint), the strategies' warm-up (orchestrator.warmup) and
their start in a run of quotes (orchestrator.start_orders), the controls from outside
a strategy (orchestrator.controls) and how a run stops and closes
(orchestrator.stopping).
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from time import perf_counter

from perps_bot.domain import (
    BookSnapshot,
    Candle,
    FundingRate,
    MarketEvent,
    Order,
    Quote,
    Signal,
    TradingState,
    event_price,
)
from perps_bot.feeds import Feed
from perps_bot.feeds.bars import BarBuilder, CandleAggregator
from perps_bot.feeds.base import no_batches
from perps_bot.feeds.columns import CandleColumns
from perps_bot.feeds.quote_columns import QuoteColumns
from perps_bot.ledger import Ledger
from perps_bot.orchestrator.clock import Clock
from perps_bot.orchestrator.long_candles import WICK_RUN
from perps_bot.orchestrator.loop_checkpoint import LoopCheckpoint
from perps_bot.orchestrator.order_flow import OrderFlow
from perps_bot.orchestrator.portfolio import Portfolio
from perps_bot.orchestrator.quiet import NO_ORDERS
from perps_bot.orchestrator.quiet_quotes import QuietQuotes
from perps_bot.orchestrator.recorder import Recorder
from perps_bot.orchestrator.routing import Routes
from perps_bot.orchestrator.start_orders import StartOrders
from perps_bot.orchestrator.warmup import WarmUp
from perps_bot.risk import RiskGate
from perps_bot.strategies import Strategy
from perps_bot.venues import Venue

_NO_PORTFOLIOS: tuple[Portfolio, ...] = ()
_NEVER = 2**63  # after any event time: a run without an end
_SEVERITY = (TradingState.HALTED, TradingState.REDUCING, TradingState.ACTIVE)


class Orchestrator(QuietQuotes, LoopCheckpoint, WarmUp, StartOrders):
    def __init__(
        self,
        *,
        feed: Feed,
        venue: Venue,
        portfolios: Sequence[Portfolio],
        account: Recorder | None,
        clock: Clock,
        last_prices: dict[str, float],
        equity_interval_ms: int,
        log_equity_interval_ms: int,
        bar_timeframe_ms: int | None,
        end_ms: int | None,
        poll_interval_ms: int = 1_000,
        reconcile_interval_ms: int | None = None,
        durable_fills: bool = True,
        candle_bar_ms: int | None = None,
        adaptive_path: bool = False,
    ) -> None:
        """`portfolios`: every portfolio of the run (SPEC 10; usually one). `account`:
        with several, the recorder of the run of their account (its equity curve, the
        run's journal lines), else None (the one portfolio's recorder is the run's)."""
        self.feed = feed
        self.venue = venue
        self.portfolios = list(portfolios)
        self.primary = self.portfolios[0]
        self.rec = account if account is not None else self.primary.rec
        self._account_rec = account
        self.routes = Routes(self.portfolios)
        self._by_symbol = self.routes.by_symbol
        self._cancel_due = False  # protective orders wait to be cancelled
        self._signalled: list[Portfolio] = []  # portfolios with pending signals this event
        self.clock = clock
        self.log = logging.getLogger("perps_bot.orchestrator")
        self._updates = venue.updates  # the venue appends; drained after each call
        self._equity_every = equity_interval_ms
        self._log_every = log_equity_interval_ms
        self._next_equity: int | None = None
        self._next_log: int | None = None
        self._bars = BarBuilder(bar_timeframe_ms) if bar_timeframe_ms else None
        self._warm_ends: dict[str, int] = {}  # orchestrator.warmup
        # candles finer than the strategy's timeframe: the strategy sees the bars
        self._candle_bars = CandleAggregator(candle_bar_ms) if candle_bar_ms else None
        self._end_ms = end_ms
        self._adaptive_path = adaptive_path  # mock.candle_path (orchestrator.candle_minutes)
        # orchestrator.long_candles (a feed of candles: settlements inside its first one
        # come before any candle, held back for it)
        self._candle_run = feed.candle_history
        self._long_candles = False
        self._inside: dict[str, list[FundingRate]] = {}
        self._entering: set[str] = set()  # symbols with a protected entry at the venue
        # a run whose candles carry a mark's extremes takes `_close_point` for every event
        self._part_base = WICK_RUN if feed.mark_extremes else None
        self._part_from: int | None = self._part_base
        self._parts: dict[str, int] = {}
        self._wick_walked: Candle | None = None
        self._joint: bool | None = None
        self._last_price = last_prices  # shared with the portfolios' plot samplers
        self._poll_every = poll_interval_ms
        self._reconcile_every = reconcile_interval_ms
        # Live fills are committed as they happen (a crash must not lose an acknowledged
        # fill); simulated runs batch their writes, a rerun reproduces them exactly.
        self._durable_fills = durable_fills
        self._save_fills: Callable[[], None] | None = None  # see store_fills_with
        self._next_poll = 0
        self._next_reconcile: int | None = None
        self._reconciled_at: int | None = None  # the books matched the venue then
        self._reconnects_seen = 0
        self._started = False
        self._closed = False
        self.stop_requested = False
        self.stop_reason = ""
        self.interrupted = False  # stopped before its end: see request_stop
        self._feed_stopping: asyncio.Task[None] | None = None
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        #: called between batches (paper runs: wall-time flushes and checkpoints)
        self.after_batch: Callable[[], None] | None = None
        #: saves at the end of this batch (paper runs: checkpoints; a session's controls),
        #: and `save_due` at once if that was asked (a run interrupted before then)
        self.save_soon: Callable[[], None] | None = None
        self.save_due: Callable[[], None] | None = None
        self.resumed = False  # restored from a checkpoint: on_start was already called
        #: on_start's signals of a run of quotes wait for their symbol's first price
        self._starting = False

    @property
    def last_prices(self) -> dict[str, float]:
        """The last traded price per symbol (shared with the plot samplers; read-only)."""
        return self._last_price

    # one-portfolio views (a single-strategy run, tests)
    @property
    def strategy(self) -> Strategy:
        return self.primary.strategy

    @property
    def ledger(self) -> Ledger:
        return self.primary.ledger

    @property
    def risk(self) -> RiskGate:
        return self.primary.risk

    @property
    def flow(self) -> OrderFlow:
        return self.primary.flow

    # -- the loop ------------------------------------------------------------------
    async def run(self) -> None:
        """From the start to the close, awaited outside `except` and `finally` blocks
        (compiled, an await there leaks the exception: test_compiled_awaits.py)."""
        await self.start()
        failure: BaseException | None = None
        try:
            await self._trade()
        except BaseException as exc:  # raised again below, once the run is closed
            failure = exc
        try:
            await self.close()
            self._last_rows()
        except BaseException as late:  # as from a `finally`: the failure is its context
            if failure is not None and late.__context__ is None:
                late.__context__ = failure
            raise
        if failure is not None:
            raise failure

    async def _trade(self) -> None:
        """Warm-up, the start's orders, every batch of the feed, the stop's orders."""
        await self.warm_up()  # exchange-fed runs: indicators ready at once
        opening = False  # on_start's signals wait for the first candles' open
        if not self.resumed and not self.stop_requested:  # (stopped as it started)
            for p in self.portfolios:
                self._signal(p, p.strategy.on_start())
            opening = self._candle_run and bool(self._signalled)
            if not opening:  # quotes: each waits for its symbol's first price
                self._starting = bool(self._signalled)
                await self._submit_all(self._pending_orders(self.clock.now()))
        end = self._end_ms if self._end_ms is not None else _NEVER
        on_event = self._on_event
        inside = self._inside  # settlements held back (orchestrator.long_candles)
        takes_stretches = self._takes_stretches()
        takes_quote_stretches = self._takes_quote_stretches()
        # stopped as it started: not one batch (the feed's own stop may not have run)
        batches = no_batches() if self.stop_requested else self.feed.batches()
        async for batch in batches:
            if opening:  # orchestrator.long_candles
                opening = await self._open_run(batch, end)
            if type(batch) is CandleColumns and takes_stretches:
                await self._walk_columns(batch, end)  # orchestrator.quiet
            elif type(batch) is QuoteColumns and takes_quote_stretches:
                await self._walk_quotes(batch, end)  # orchestrator.quiet_quotes
            elif self._joint or (self._joint is None and self._joins(batch)):
                await self._walk_together(batch, end)  # orchestrator.long_candles
            else:
                for event in batch:
                    if event.ts >= end:
                        self._reach_end()
                        break
                    if (inside or type(event) is FundingRate) and await self._held_back(event):
                        continue  # a settlement inside the next candle
                    received = perf_counter()  # tick-to-order latency starts here
                    orders = on_event(event)
                    if orders or self._cancel_due:
                        await self._submit_all(orders, received)
            if self.venue.needs_polling:
                await self._poll()
            self.rec.view.tick(*self.feed.progress())
            self.rec.flush_log()
            if self.stop_requested:
                break
            if self.after_batch is not None:
                self.after_batch()
            # yield to the event loop between batches (signals, timers, I/O)
            await asyncio.sleep(0)
        else:
            ran_out = not self.stop_requested  # not stopped early by request_stop
            if ran_out and self._end_ms is not None and self.last_ts is not None:
                self.last_ts = self._end_ms  # the feed ran to the end of [start, end)
        if self.interrupted and self.save_due is not None:
            self.save_due()  # a control since the last checkpoint: not lost
        self._starting = False  # on_start's still waiting: denied, said so
        for p in self.portfolios:
            self._signal(p, p.strategy.on_stop())
        await self._submit_all(self._pending_orders(self.clock.now()))

    async def _event(self, event: MarketEvent, end: int) -> bool:
        """One event and its orders; False (and the run stops) once it is past the end."""
        if event.ts >= end:
            self._reach_end()
            return False
        if (self._inside or type(event) is FundingRate) and await self._held_back(event):
            return True
        received = perf_counter()
        orders = self._on_event(event)
        if orders or self._cancel_due:
            await self._submit_all(orders, received)
        return True

    # -- one event -----------------------------------------------------------------
    def _on_event(self, event: MarketEvent) -> list[Order]:
        """One event through every stage, once per portfolio trading its symbol. The hot
        path of a backtest (one call per candle): the feed, the venue and the bars are
        shared; per portfolio only its books and its strategy work; the common case
        allocates nothing (no signal list unless a stage returns signals)."""
        ts = event.ts
        symbol = event.symbol
        self.clock.advance(ts)
        if self.first_ts is None:  # the run covers the market from here: a candle's open
            self._start_at(event)
        if self._long_candles and type(event) is Candle:
            self._minute_rows(event)  # candles longer than the equity interval
        self.last_ts = ts
        portfolios = self._by_symbol.get(symbol, _NO_PORTFOLIOS)

        # execution: resting / queued orders meet the new prices
        part = self._part_from  # set: walked candles' close points (orchestrator.long_candles)
        fills = self.venue.on_market(event) if part is None else self._close_point(event)
        if fills:
            self._apply_fills(fills)
        if self._updates:
            self._drain_updates()

        # what the event means for every portfolio: prices, mark, bars (the event types
        # are final slotted dataclasses: `type(...) is` is the cheap test)
        mark: float | None
        price: float | None
        low = high = 0.0
        bar: Candle | None = None
        wick: Candle | None = None  # a candle with the mark's extremes inside it
        funding: FundingRate | None = None
        for_strategy: MarketEvent | None = event
        kind = type(event)
        fresh = True  # a traded price: the risk gate's market data is fresh (not a mark)
        if type(event) is Candle:
            price = event.close
            mark = event.mark if event.mark is not None else price
            low, high = event.low, event.high
            if event.mark_low is not None or event.mark_high is not None:
                wick = event
            if self._candle_bars is not None:
                for_strategy = self._candle_bars.add(event)
        elif type(event) is Quote or type(event) is BookSnapshot:
            traded = event.last if kind is Quote else event_price(event)
            mark = event.mark if event.mark is not None else traded
            price = traded if traded is not None else self._last_price.get(symbol, 0.0)
            fresh = traded is not None
            if traded is not None:
                low = high = traded
                if self._bars is not None:
                    bar = self._bars.update(symbol, ts, traded, traded if mark is None else mark)
                    if bar is not None and self._warm_ends:
                        self.live_edge(bar)  # the first after the warm-up (orchestrator.warmup)
        else:
            price = self._last_price.get(symbol, event.mark)
            mark = event.mark
            fresh = False
            if type(event) is FundingRate:
                funding = event
        if price:
            self._last_price[symbol] = price

        # risk (data is fresh), ledger (mark to market, funding, liquidation) and
        # strategy, per portfolio; nothing before this reads the risk gate
        for p in portfolios:
            if fresh:
                p.risk.on_market_data(symbol, ts)
            if low:
                p.excursions.on_prices(symbol, low, high)
            if bar is not None:
                self._signal(p, p.strategy.on_event(bar))
            if funding is not None:
                settled = p.ledger.apply_funding(ts, symbol, funding.rate, funding.mark)
                if settled is not None:
                    p.rec.funding(ts, symbol, settled)
            if mark:
                if wick is not None:
                    self._mark_wick(p, wick, ts)
                liquidations = p.ledger.update_mark(symbol, mark, ts)
                if liquidations:
                    self._apply_liquidations(p, liquidations)
            if for_strategy is not None:
                out = p.strategy.on_event(for_strategy)
                if out:
                    self._signal(p, out)

        # metrics: equity snapshots on the (simulated) clock (orchestrator.equity_rows)
        next_equity = self._next_equity
        if next_equity is not None and ts >= next_equity:
            self._snapshot(ts)

        if not self._signalled:
            return NO_ORDERS
        return self._pending_orders(ts)

    def _signal(self, portfolio: Portfolio, signals: Sequence[Signal]) -> None:
        """Keep a stage's signals until the event's end (risk sees the new equity first);
        a paused portfolio's strategy is not heard."""
        if signals and not portfolio.paused:
            self.inject(portfolio, signals)

    def _pending_orders(self, ts: int) -> list[Order]:
        """The orders the pending signals make, portfolio by portfolio."""
        orders: list[Order] = []
        for p in self._signalled:
            if p.flattening is not None:
                self.closes_due(p, ts)
            elif p.closing_out is not None:
                self.close_again(p, ts)
            signals, p.pending = p.pending, []
            if self._starting:
                signals = self._priced(p, signals, ts)
            made = p.flow.orders(signals, ts, self._last_price, orders)
            for order in made:
                p.protection.watch(order)
            orders.extend(made)
            self._relevel(p, signals, ts, orders)
            orders.extend(self._protective(p))
        self._signalled.clear()
        if self._starting:
            self._still_starting()
        self.keep_closing()
        self._restate_waiting(orders)  # a resume waiting on a close that was refused
        return orders

    @property
    def trading_state(self) -> TradingState:
        """The most restrictive state of any portfolio (each keeps its own)."""
        states = {p.risk.state for p in self.portfolios}
        return next(s for s in _SEVERITY if s in states)
