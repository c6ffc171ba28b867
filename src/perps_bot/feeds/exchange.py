"""Real market data from an exchange through ccxt's async REST API (canary and prod).

Design choices, and why:
- REST polling, every `exchange.poll_interval`, of the order book, the 24h ticker
  (last price) and the premium index (mark price, funding rate, next funding time)
  per symbol. Polling is simple, survives reconnects without sequence bookkeeping,
  and is what the canary needs (a bar-based strategy, seconds-level freshness).
- `exchange.use_websocket: true` streams through ccxt.pro instead: the
  `StreamingExchangeFeed` subclass (feeds/exchange_stream.py, whose docstring
  explains that mode; `exchange_feed(...)` there picks the class from the config).
  Both modes share this module's request and per-endpoint parsing helpers, so a
  streamed book and a polled one become events through the same code.
- Only public endpoints are called, so the dry-run canary can run with a client
  that has no keys at all.
- Event timestamps are the local clock at receipt (`clock`, wall ms by default),
  not the exchange's: the risk gate measures staleness against the same clock, and
  receipt time is in order across symbols, which the Feed protocol requires (clamped
  to never go below the previous event: a wall clock can be stepped back).
- Funding: the exchange only publishes the *next* funding time and the rate that
  will be settled then. When that time passes (local clock past it, or the
  exchange's next funding time moves on), the feed emits one `FundingRate` with
  `ts` = the funding time and the last rate seen for that period, so the ledger
  settles it exactly once. No funding is emitted for periods that ended before
  the feed first saw the symbol. The `ts` is clamped to be no earlier than the
  previous event and no later than now, keeping the stream in order.
- Errors never end the stream: network and rate-limit errors (and anything else
  the exchange throws mid-run) are logged on one line and the next poll waits an
  exponential backoff instead of the poll interval. While the exchange is down no
  events arrive, so market data goes stale by itself and the risk gate denies
  with STALE_MARKET_DATA; `healthy` and `last_update(symbol)` expose the same.
- Sleeps go through an injectable `sleep` and are raced against `stop()`, so
  `stop()` ends `batches()` promptly and tests never wait in real time.
- The feed owns the ccxt client it is given: `stop()` closes it (ccxt requires an
  explicit close; the orchestrator always stops its feed). `close_exchange=False`
  leaves it open for a caller that shares the client.
- Prices are floats (market events are float by design, see domain.market).

This module requests and schedules; turning each answer into events is
feeds.exchange_answers (a mixin of the feed, shared with the streaming feed), and the
closed candles before the start that warm the strategies up are feeds.exchange_warmup.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

import ccxt.async_support as ccxt_async

from perps_bot.config.models import ExchangeConfig
from perps_bot.domain import MarketEvent, MarkPrice
from perps_bot.domain.timeutil import parse_duration
from perps_bot.exchange import to_exchange_symbol
from perps_bot.exchange.backoff import Backoff, backoff_of
from perps_bot.exchange.runtime import close_quietly, one_line, take_retry_after, wall_clock_ms
from perps_bot.exchange.startup import RATE_LIMITS, TRANSIENT
from perps_bot.feeds.base import FeedError
from perps_bot.feeds.exchange_answers import AnswerParsing, FundingPeriod
from perps_bot.feeds.exchange_answers import Levels as Levels  # re-exported
from perps_bot.feeds.exchange_warmup import WarmUpFetch
from perps_bot.feeds.trades import TradeTape

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The REST requests made per symbol and poll: order book, 24h ticker (last price),
#: premium index (mark price and funding).
BOOK, TICKER, PREMIUM = "book", "ticker", "premium"
REST_CHANNELS = (BOOK, TICKER, PREMIUM)


class ExchangeFeed(AnswerParsing, WarmUpFetch):
    """Polls book, ticker and premium index per symbol; implements the Feed protocol.
    (`feeds.exchange_stream.exchange_feed` builds the streaming subclass instead when
    `exchange.use_websocket` is set.)"""

    simulated = False
    candle_history = False
    mark_extremes = False

    def __init__(
        self,
        exchange: Any,
        cfg: ExchangeConfig,
        symbols: list[str],
        *,
        exchange_symbols: Mapping[str, str] | None = None,
        clock: Callable[[], int] = wall_clock_ms,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        book_limit: int = 20,
        jitter: float = 0.0,
        seed: int = 0,
        close_exchange: bool = True,
    ) -> None:
        if not symbols:
            raise FeedError("exchange feed needs at least one symbol")
        self._exchange = exchange
        self._cfg = cfg
        self.symbols = list(symbols)
        self._clock = clock
        self._sleep = sleep
        self._close_exchange = close_exchange
        self._book_limit = book_limit
        self._poll_ms = parse_duration(cfg.poll_interval)
        self._jitter = jitter
        self._seed = seed
        self._backoff = self._new_backoff(seed)
        self._hold_ms = 0  # a rate limit's Retry-After, for the next wait
        # the instruments' exchange symbols (default rule: X-PERP -> X/USDT:USDT)
        self._ccxt_symbols = {s: to_exchange_symbol(s, exchange_symbols) for s in self.symbols}
        self._stop_event = asyncio.Event()
        self._last_update: dict[str, int] = {}
        self._funding: dict[str, FundingPeriod] = {}
        self._last_funding_emitted: dict[str, int] = {}
        self._last_ts = 0
        self._markets_loaded = False
        self._batches = 0
        #: public trades, handed out with each symbol's next book (feeds.trades)
        self.tape = TradeTape(clock())
        self._trades_wanted = cfg.public_trades and callable(
            getattr(exchange, "fetch_trades", None)
        )
        #: True once a whole poll cycle succeeded and until one fails.
        self.healthy = False
        #: Consecutive failed poll cycles (0 when healthy).
        self.consecutive_failures = 0
        #: Total failed requests since start (for logs and metrics).
        self.errors = 0

    def _new_backoff(self, seed: int) -> Backoff:
        """Retry delays from `exchange.backoff_base` doubling up to `backoff_max`."""
        return backoff_of(self._cfg, jitter=self._jitter, seed=seed)

    # -- Feed protocol -------------------------------------------------------------

    async def start(self) -> None:
        """Load markets (retrying network errors) and check every symbol exists.

        An exchange that stays unreachable does not fail the start: the poll loop
        keeps retrying. A symbol the exchange does not list is a FeedError.
        """
        for attempt in range(self._cfg.max_retries + 1):
            if self._stop_event.is_set():
                return
            try:
                await self._load_markets()
                return
            except TRANSIENT as exc:
                self.errors += 1
                log.warning(
                    "exchange feed: loading markets failed (attempt %d): %s",
                    attempt + 1,
                    one_line(exc),
                )
                await self._pause(self._backoff.next_delay_ms())
        log.error("exchange feed: exchange unreachable at start; will keep retrying")

    async def stop(self) -> None:
        """End `batches()` at once and (unless told otherwise) close the ccxt client,
        which the feed owns from construction on (ccxt needs an explicit close)."""
        self._stop_event.set()
        if self._close_exchange:
            await close_quietly(self._exchange)

    async def batches(self) -> AsyncIterator[Sequence[MarketEvent]]:
        while not self._stop_event.is_set():
            started = self._clock()
            events = await self._until_stopped(self._poll_cycle())
            if events is None:
                return
            if events:
                self._batches += 1
                yield events
            await self._pause(self._next_delay_ms(started))

    def strategy_bar_ms(self, timeframe: str) -> int | None:
        """Ticks, not candles: the orchestrator builds the strategy's bars itself."""
        return None

    def progress(self) -> tuple[int, int | None]:
        return self._batches, None

    # -- health --------------------------------------------------------------------

    def last_update(self, symbol: str) -> int | None:
        """Local time (ms) of the last good order book for `symbol`, None if never."""
        return self._last_update.get(symbol)

    @property
    def stopped(self) -> bool:
        return self._stop_event.is_set()

    # -- polling -------------------------------------------------------------------

    async def _load_markets(self) -> None:
        try:
            await self._exchange.load_markets()
        except TRANSIENT:
            raise
        except ccxt_async.BaseError as exc:
            raise FeedError(f"exchange feed: cannot load markets: {one_line(exc)}") from exc
        markets = self._exchange.markets or {}
        missing = [s for s, cs in self._ccxt_symbols.items() if cs not in markets]
        if missing:
            names = ", ".join(f"{s} ({self._ccxt_symbols[s]})" for s in missing)
            raise FeedError(f"exchange feed: the exchange does not list {names}")
        self._markets_loaded = True

    def _next_delay_ms(self, started: int) -> int:
        """Wait before the next poll: the rest of the poll interval, or a backoff, and never
        less than a rate limit's Retry-After (Binance bans IPs that keep asking)."""
        hold, self._hold_ms = self._hold_ms, 0
        if self.healthy:
            self._backoff.reset()
            return max(self._poll_ms - (self._clock() - started), hold)
        return max(self._backoff.next_delay_ms(), hold)

    async def _markets_ready(self) -> bool:
        """Load markets if not yet done; False (failure logged) while unreachable."""
        if self._markets_loaded:
            return True
        try:
            await self._load_markets()
        except TRANSIENT as exc:
            self._record_failure(f"loading markets: {one_line(exc)}")
            return False
        return True

    async def _poll_cycle(self) -> list[MarketEvent]:
        """One round of requests for every symbol; the events it produced, in ts order."""
        if not await self._markets_ready():
            return []
        results = await asyncio.gather(*(self._fetch_symbol(s) for s in self.symbols))
        await self._poll_trades(self.symbols)
        now = self._now()
        return self._finish_cycle(
            results, lambda symbol, *answers: self._events_for(symbol, now, *answers)
        )

    def _now(self) -> int:
        """Receipt time, never before the previous event: the wall clock can be stepped
        back (NTP, a resumed VM) and events must stay in order."""
        return max(self._clock(), self._last_ts)

    def _finish_cycle(
        self,
        results: Sequence[tuple[Any, Any, Any]],
        events_for: Callable[[str, Any, Any, Any], tuple[bool, list[MarketEvent]]],
    ) -> list[MarketEvent]:
        """Events of every symbol's (book, ticker, premium) answers, sorted by ts, and
        the health bookkeeping of the cycle."""
        events: list[MarketEvent] = []
        all_ok = True
        for symbol, answers in zip(self.symbols, results, strict=True):
            ok, symbol_events = events_for(symbol, *answers)
            all_ok = all_ok and ok
            events.extend(symbol_events)
        if all_ok:
            if not self.healthy:
                log.info("exchange feed: market data flowing")
            self.healthy = True
            self.consecutive_failures = 0
        else:
            self.healthy = False
            self.consecutive_failures += 1
        events.sort(key=lambda e: e.ts)
        if events:
            self._last_ts = max(self._last_ts, events[-1].ts)
        return events

    async def _fetch_symbol(
        self, symbol: str, wanted: Collection[str] = REST_CHANNELS
    ) -> tuple[Any, Any, Any]:
        """(book, ticker, premium) for `symbol`: each a ccxt answer, the exception it
        raised, or None when that request was not in `wanted`."""
        ccxt_symbol = self._ccxt_symbols[symbol]
        requests = {
            BOOK: lambda: self._exchange.fetch_order_book(ccxt_symbol, self._book_limit),
            TICKER: lambda: self._exchange.fetch_ticker(ccxt_symbol),
            PREMIUM: lambda: self._exchange.fetch_funding_rate(ccxt_symbol),
        }
        channels = [c for c in REST_CHANNELS if c in wanted]
        results = await asyncio.gather(*(requests[c]() for c in channels), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result  # CancelledError and friends must propagate
            if isinstance(result, RATE_LIMITS):  # the exchange says when to come back
                told = take_retry_after(self._exchange)
                self._hold_ms = max(self._hold_ms, int((told or 0.0) * 1000))
        by_channel = dict(zip(channels, results, strict=True))
        return by_channel.get(BOOK), by_channel.get(TICKER), by_channel.get(PREMIUM)

    async def _poll_trades(self, symbols: Sequence[str]) -> None:
        """Public trades of `symbols` by REST (a failure is logged; it does not make the
        feed unhealthy: books and prices still flow)."""
        if not self._trades_wanted or not symbols:
            return
        answers = await asyncio.gather(
            *(self._exchange.fetch_trades(self._ccxt_symbols[s]) for s in symbols),
            return_exceptions=True,
        )
        for symbol, answer in zip(symbols, answers, strict=True):
            if isinstance(answer, BaseException) and not isinstance(answer, Exception):
                raise answer
            if isinstance(answer, Exception) or not self.tape.add(symbol, answer):
                self.errors += 1
                log.debug("exchange feed: %s trades: %s", symbol, one_line(answer))

    def _events_for(
        self, symbol: str, now: int, book: Any, ticker: Any, premium: Any
    ) -> tuple[bool, list[MarketEvent]]:
        events: list[MarketEvent] = []
        mark = self._premium_mark(symbol, premium)
        if mark is not None:
            events.extend(self._funding_events(symbol, now, premium, mark))
            events.append(MarkPrice(now, symbol, mark))
        ticker_ok, last = self._ticker_last(symbol, ticker)
        levels = self._book_levels(symbol, book)
        if levels is not None:
            events.append(self._snapshot(symbol, now, levels, last, mark))
        return mark is not None and ticker_ok and levels is not None, events

    # -- stoppable waiting ---------------------------------------------------------

    async def _pause(self, delay_ms: int) -> None:
        if delay_ms <= 0 or self._stop_event.is_set():
            return
        await self._until_stopped(self._sleep(delay_ms / 1000.0))

    async def _until_stopped(
        self, awaitable: Awaitable[T], *, or_event: asyncio.Event | None = None
    ) -> T | None:
        """Run `awaitable` unless stop() (or `or_event`) comes first; then cancel it and
        return None."""
        if self._stop_event.is_set() or (or_event is not None and or_event.is_set()):
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            return None
        work = asyncio.ensure_future(awaitable)
        events = [self._stop_event] if or_event is None else [self._stop_event, or_event]
        waiters = [asyncio.ensure_future(event.wait()) for event in events]
        try:
            done, _ = await asyncio.wait({work, *waiters}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (work, *waiters):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        if work in done and not work.cancelled():
            return work.result()
        return None
