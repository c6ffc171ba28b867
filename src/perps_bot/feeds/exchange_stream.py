"""Websocket market data for the exchange feed (`exchange.use_websocket: true`).

`exchange_feed(...)` builds the `StreamingExchangeFeed` below when the flag is set
(the polling `ExchangeFeed` otherwise); it emits the same events as the polling feed
(BookSnapshot, MarkPrice, FundingRate).

Design choices, and why:
- ccxt.pro's unified `watch_order_book`, `watch_ticker` and `watch_mark_price`, one
  watch loop (task) per symbol and stream, on the client the feed is given
  (`create_exchange` builds the ccxt.pro class when `use_websocket` is set; it also
  does REST). ccxt keeps the local book in sync with the diff stream and checks the
  update-id chain itself, so no websocket or sequence code lives here.
- Funding has no unified stream in ccxt (binance has no `watchFundingRate`), so the
  premium index keeps being polled every `exchange.poll_interval` through the polling
  feed's own request and parsing code; funding settles exactly as in polling mode.
  A stream the exchange class does not offer (`has[...]` false) is simply polled.
- Every event goes through one ordered buffer: a streamed book or mark price becomes
  an event the moment it arrives (ts = local clock at receipt, clamped to never go
  below the previous event), and `batches()` yields whatever accumulated since the
  last batch, so a busy market gives bigger batches instead of a backlog. The
  ticker stream only refreshes the `last` price the next book carries (as when
  polling, where the ticker is not an event of its own).
- The poll cycle still runs every `poll_interval` and emits, per symbol, a MarkPrice
  and a BookSnapshot like the polling feed does, taken from the live streams when
  they are up (no request) and from REST otherwise. Strategies and the risk gate
  thus see at least the polling cadence in a quiet market (a diff stream is silent
  when nothing changes). A stream that is "up" but silent for longer than
  `exchange.stale_after` is checked through REST as well: a half-dead connection
  cannot pass off an old book as fresh for longer than that.
- Resilience: a watch error or disconnect marks that stream down and wakes the poll
  loop at once, so the next cycle (immediately) fetches that symbol's data by REST;
  the watch loop retries with its own `Backoff` (per-stream, seeded with crc32); the
  first successful watch marks it up again and REST polling for it stops. Logging is
  per outage, not per stream: ONE warning line when the feed loses its first stream,
  info lines for further losses in the same outage and when every stream is back;
  failed retries are debug lines. A REST answer is dropped in favour of the stream
  when the stream delivered after the request was sent (never emit an older book
  after a newer one).
- `healthy` means what it means when polling: the last poll cycle got everything it
  asked for (by stream or REST). `last_update(symbol)` is the receipt time of the
  last good book from either source. `streaming(symbol)` tells whether all of a
  symbol's streams are up.
- Cost to know: every (re)subscription of a depth stream makes ccxt fetch a REST
  snapshot of 1000 levels (heavy in Binance's rate-limit weight); the per-stream
  backoff bounds how often a flapping connection can do that.
- `stop()` sets the stop flag (ending `batches()`), cancels and awaits every watch
  task and the poll task, then closes the client (ccxt.pro closes its websockets).

The watch loops and their up/down bookkeeping are feeds.stream_supervisor; this
module merges what they deliver with the REST fallback.
"""

import asyncio
import contextlib
import logging
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from perps_bot.config.models import ExchangeConfig
from perps_bot.domain import MarketEvent, MarkPrice
from perps_bot.domain.timeutil import parse_duration
from perps_bot.exchange.backoff import Backoff
from perps_bot.feeds.base import FeedError
from perps_bot.feeds.exchange import BOOK, PREMIUM, TICKER, ExchangeFeed
from perps_bot.feeds.exchange_answers import Levels, parse_book, positive
from perps_bot.feeds.stream_supervisor import (
    MARK,
    TRADES,
    StreamKey,
    StreamState,
    StreamSupervisor,
)

log = logging.getLogger(__name__)

#: Streams per symbol -> (ccxt.pro method, its `has` key).
STREAMS: dict[str, tuple[str, str]] = {
    BOOK: ("watch_order_book", "watchOrderBook"),
    TICKER: ("watch_ticker", "watchTicker"),
    MARK: ("watch_mark_price", "watchMarkPrice"),
    TRADES: ("watch_trades", "watchTrades"),
}


class StreamingExchangeFeed(ExchangeFeed):
    """ExchangeFeed fed by ccxt.pro streams, with REST for funding and as a fallback."""

    def __init__(
        self, exchange: Any, cfg: ExchangeConfig, symbols: list[str], **options: Any
    ) -> None:
        """Same arguments as ExchangeFeed (clock, sleep, book_limit, jitter, seed, ...)."""
        super().__init__(exchange, cfg, symbols, **options)
        if not callable(getattr(exchange, "watch_order_book", None)):
            raise FeedError(
                "exchange.use_websocket needs a ccxt.pro client "
                "(perps_bot.exchange.create_exchange(cfg, websocket=True))"
            )
        has = getattr(exchange, "has", None) or {}
        self._stream_names = [
            name
            for name, (_, flag) in STREAMS.items()
            if has.get(flag) and (name != TRADES or cfg.public_trades)
        ]
        watches = {
            (symbol, name): self._watch_call(STREAMS[name][0], self._ccxt_symbols[symbol])
            for symbol in self.symbols
            for name in self._stream_names
        }

        def backoff_for(key: StreamKey) -> Backoff:
            return self._new_backoff(zlib.crc32(f"{self._seed}:{key[0]}:{key[1]}".encode()))

        self._streams = StreamSupervisor(
            watches,
            on_data=self._on_stream_data,
            backoff_for=backoff_for,
            clock=self._clock,
            sleep=self._sleep,
            retry_timeout_s=parse_duration(cfg.stale_after) / 1000.0,
        )
        self._quiet_ms = parse_duration(cfg.stale_after)
        self._pending: list[MarketEvent] = []
        self._wakeup = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self._fatal: BaseException | None = None
        self._outage = False
        #: Latest values per symbol, from whichever source delivered last.
        self._streamed_book: dict[str, tuple[Levels, Levels]] = {}
        self._last_price: dict[str, float] = {}
        self._mark: dict[str, float] = {}

    # -- Feed protocol -------------------------------------------------------------

    async def stop(self) -> None:
        """End `batches()`, cancel and await every task, then close the client."""
        self._stop_event.set()
        await self._shutdown()
        await super().stop()

    async def batches(self) -> AsyncIterator[Sequence[MarketEvent]]:
        if self._poller is None and not self._stop_event.is_set():
            self._poller = asyncio.create_task(self._poll_forever(), name="exchange feed poll")
        try:
            while not self._stop_event.is_set():
                if self._fatal is not None:
                    raise self._fatal
                if not self._pending:
                    self._wakeup.clear()
                    if await self._until_stopped(self._wakeup.wait()) is None:
                        return
                    continue
                events, self._pending = self._pending, []
                self._batches += 1
                yield events
        finally:
            await self._shutdown()

    # -- health --------------------------------------------------------------------

    def streaming(self, symbol: str) -> bool:
        """True when every stream of `symbol` is up (its REST polling is then only
        the premium index, for funding)."""
        keys = [(symbol, name) for name in self._stream_names if name != TRADES]
        return bool(keys) and all(self._streams.states[key].up for key in keys)

    @property
    def stream_states(self) -> dict[StreamKey, StreamState]:
        """Each (symbol, stream)'s state as the watch loops have it (up, consecutive
        failures, last delivery): what a health check or a failing test reports."""
        return {key: replace(state) for key, state in self._streams.states.items()}

    @property
    def stream_errors(self) -> int:
        """Failed watches since start (`errors` counts failed REST requests)."""
        return self._streams.errors

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """The feed's own tasks (watch loops and the poll loop), for shutdown checks."""
        return [*self._streams.tasks, *([self._poller] if self._poller else [])]

    # -- tasks ---------------------------------------------------------------------

    def _watch_call(self, method: str, ccxt_symbol: str) -> Callable[[], Awaitable[Any]]:
        watch = getattr(self._exchange, method)
        return lambda: watch(ccxt_symbol)

    async def _shutdown(self) -> None:
        poller = self._poller
        if poller is not None and not poller.done():
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        await self._streams.stop()

    async def _poll_forever(self) -> None:
        """Poll what the streams do not cover, every poll interval or at once when a
        stream goes down; start the streams once markets are loaded."""
        try:
            while not self._stop_event.is_set():
                started = self._clock()
                self._streams.changed.clear()
                self._publish(await self._stream_poll_cycle(started))
                if self._markets_loaded and not self._streams.running:
                    self._streams.start()
                    log.info(
                        "exchange feed: streaming %s for %d symbol(s) via ccxt.pro; "
                        "premium index (funding) polled every %s",
                        ", ".join(self._stream_names) or "nothing",
                        len(self.symbols),
                        self._cfg.poll_interval,
                    )
                delay = self._next_delay_ms(started)
                await self._until_stopped(
                    self._sleep(delay / 1000.0), or_event=self._streams.changed
                )
        except Exception as exc:  # e.g. FeedError (unknown symbol): batches() raises it
            self._fatal = exc
            self._wakeup.set()

    def _publish(self, events: list[MarketEvent]) -> None:
        if events:
            self._pending.extend(events)
            self._last_ts = max(self._last_ts, events[-1].ts)
            self._wakeup.set()

    # -- streamed data -------------------------------------------------------------

    def _on_stream_data(self, key: StreamKey, data: Any) -> bool:
        symbol, stream = key
        now = self._now()
        if stream == TRADES:
            return self.tape.add(symbol, data)
        if stream == BOOK:
            levels = parse_book(data, self._book_limit)
            if levels is None:
                return False
            self._streamed_book[symbol] = levels
            last, mark = self._last_price.get(symbol), self._mark.get(symbol)
            self._publish([self._snapshot(symbol, now, levels, last, mark)])
            return True
        field = "last" if stream == TICKER else "markPrice"
        value = positive(data.get(field) if isinstance(data, dict) else None)
        if value is None:
            return False
        if stream == TICKER:
            self._last_price[symbol] = value
        else:
            self._mark[symbol] = value
            self._publish([MarkPrice(now, symbol, value)])
        return True

    # -- the poll cycle ------------------------------------------------------------

    async def _stream_poll_cycle(self, started: int) -> list[MarketEvent]:
        if not await self._markets_ready():
            return []
        self._log_stream_changes()
        wanted = {symbol: self._rest_requests(symbol, started) for symbol in self.symbols}
        results = await asyncio.gather(*(self._fetch_symbol(s, wanted[s]) for s in self.symbols))
        since = started - self._quiet_ms
        quiet = [s for s in self.symbols if not self._streams.fresh((s, TRADES), since)]
        await self._poll_trades(quiet)
        now = self._now()
        return self._finish_cycle(
            results, lambda symbol, *answers: self._merged_events(symbol, now, started, *answers)
        )

    def _rest_requests(self, symbol: str, now: int) -> set[str]:
        """Premium index always (funding); book and ticker unless streamed live."""
        wanted = {PREMIUM}
        for name in (BOOK, TICKER):
            if not self._streams.fresh((symbol, name), now - self._quiet_ms):
                wanted.add(name)
        return wanted

    def _merged_events(
        self, symbol: str, now: int, started: int, book: Any, ticker: Any, premium: Any
    ) -> tuple[bool, list[MarketEvent]]:
        """The polling feed's per-symbol events, each value from its stream unless the
        stream is down or REST answered for it (a stream delivery since `started` wins)."""
        events: list[MarketEvent] = []
        rest_mark = self._premium_mark(symbol, premium)
        ok = rest_mark is not None
        if rest_mark is not None:
            events.extend(self._funding_events(symbol, now, premium, rest_mark))
        if not self._streams.fresh((symbol, MARK), started):
            _set_or_drop(self._mark, symbol, rest_mark)
        mark = self._mark.get(symbol)
        if mark is not None:
            events.append(MarkPrice(now, symbol, mark))
        if ticker is not None and not self._streams.fresh((symbol, TICKER), started):
            ticker_ok, last = self._ticker_last(symbol, ticker)
            ok = ok and ticker_ok
            _set_or_drop(self._last_price, symbol, last)
        levels = self._streamed_book.get(symbol)
        if book is not None and not self._streams.fresh((symbol, BOOK), started):
            levels = self._book_levels(symbol, book)
            ok = ok and levels is not None
        if levels is not None:
            events.append(self._snapshot(symbol, now, levels, self._last_price.get(symbol), mark))
        return ok, events

    def _log_stream_changes(self) -> None:
        down, up = self._streams.take_changes()
        if down:
            names = ", ".join(f"{symbol} {stream}" for symbol, stream in down)
            level = logging.INFO if self._outage else logging.WARNING
            self._outage = True
            log.log(
                level,
                "exchange feed: stream down for %s (%s); polling REST for it, retrying",
                names,
                next(iter(down.values())),
            )
        for symbol, stream in up:
            log.debug("exchange feed: %s %s stream is back", symbol, stream)
        if self._outage and self._streams.all_up():
            self._outage = False
            log.info("exchange feed: all streams are back; REST polling only for funding")


def _set_or_drop(latest: dict[str, float], symbol: str, value: float | None) -> None:
    if value is None:
        latest.pop(symbol, None)
    else:
        latest[symbol] = value


def exchange_feed(
    exchange: Any, cfg: ExchangeConfig, symbols: list[str], **kwargs: Any
) -> ExchangeFeed:
    """The exchange feed the config asks for: streaming with `use_websocket`, else
    polling. Keyword arguments go to the feed (clock, sleep, book_limit, ...)."""
    if cfg.use_websocket:
        return StreamingExchangeFeed(exchange, cfg, symbols, **kwargs)
    return ExchangeFeed(exchange, cfg, symbols, **kwargs)
