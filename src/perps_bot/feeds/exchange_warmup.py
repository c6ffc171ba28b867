"""The exchange's closed candles before the start, for the strategies' warm-up (the
`WarmUpSource` side of the exchange feeds; orchestrator.warmup hands them out).

The latest `bars + 1` klines per symbol through ccxt (`fetch_ohlcv`: the newest one is
still open and is dropped, as is any candle whose close lies after the feed's clock): one
request when they fit in one (KLINES_PAGE, ccxt's binance asks for 1,000 at most), else
pages of KLINES_PAGE from where they begin (`since`) until the exchange has no more, each
page retried on its own, a kline listed again at a page's edge kept once; at most
WARMUP_PAGES pages a symbol (a strategy wanting more gets the latest bars they hold). A
timeframe the exchange has no klines of (Binance: 2m, 10m), or whose klines open off the
bot's bars (Binance's weeks open on Mondays, the bot's on the epoch's Thursdays), is built
from the longest interval that divides it and opens on them (`bars + 1` bars' worth of
them, aggregated by feeds.bars.CandleAggregator, whole bars only). A symbol whose candles end
before the bar the bot's clock is in once all are fetched is asked again (a candle closed
meanwhile: the warm-up ends where the live bars begin). A hole in a symbol's klines (an
exchange missing candles, a page come back short) is asked for once more; one still there
is said in one warning line, and the strategies learn from the bars after it only (a
series across it would take the bars either side for neighbours; a backtest refuses a
file with a hole). Network and rate-limit errors are
retried (exchange.retrying: `exchange.max_retries`, the `backoff_base` .. `backoff_max`
backoff, a rate limit's Retry-After); an answer the exchange refuses (an
interval it has no candles of, an unknown symbol, candles that open off the bot's bars
in every interval that divides them) or that stays unusable is not. A symbol whose candles cannot be
had starts without warm-up, and the run says so in one warning line: market data at
start is retried for ever by the feed and never stops a run, and a strategy without
warm-up is the run it always was.

A mixin of `ExchangeFeed`: the attributes below are the feed's, declared here for the
type checker.
"""

import asyncio
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ccxt.async_support as ccxt_async

from perps_bot.config.models import ExchangeConfig
from perps_bot.domain import Candle, format_duration, iso_utc
from perps_bot.exchange.backoff import Backoff
from perps_bot.exchange.retrying import GaveUp, retried
from perps_bot.exchange.runtime import one_line
from perps_bot.feeds.bars import CandleAggregator

log = logging.getLogger("perps_bot.feeds.exchange")  # the feed's own logger

#: klines a request asks for: ccxt's binance asks for 1,000 at most (the exchange serves
#: 1,500)
KLINES_PAGE = 1_000
#: the most pages of klines a symbol's warm-up asks for (a timeframe built from much
#: finer klines gets the latest bars they hold)
WARMUP_PAGES = 20


class _Unusable(Exception):
    """An answer with no usable candles (retried like a network error)."""


class _Stopped(Exception):
    """The feed stopped while the candles were asked for."""


class _OffGrid(Exception):
    """Candles that are not the bot's bars (not asked again: the exchange's interval
    opens elsewhere)."""


class WarmUpFetch:
    _exchange: Any
    _cfg: ExchangeConfig
    _ccxt_symbols: dict[str, str]
    _clock: Callable[[], int]
    _stop_event: asyncio.Event
    _seed: int
    errors: int

    def _new_backoff(self, seed: int) -> Backoff:
        raise NotImplementedError

    async def _pause(self, delay_ms: int) -> None:
        raise NotImplementedError

    async def warmup_candles(
        self, bars: Mapping[str, int], timeframe_ms: int
    ) -> dict[str, list[Candle]]:
        """Up to `bars[symbol]` closed candles per symbol, oldest first (WarmUpSource)."""
        intervals = exchange_intervals(self._exchange, timeframe_ms)
        if not intervals:
            log.warning("warm-up: %s has no candles of %d ms or of a part of it; the"
                        " strategies start without warm-up", self._cfg.name,
                        timeframe_ms)  # fmt: skip
            return {}
        plan = _Plan(intervals, timeframe_ms)
        out: dict[str, list[Candle]] = {}
        failed: list[str] = []
        why = ""
        for symbol, count in bars.items():
            got = await self._on_grid(symbol, plan, count)
            if isinstance(got, str):
                failed.append(symbol)
                why = got
            else:
                out[symbol] = got
        behind = await self._catch_up(out, bars, plan)
        if self._stop_event.is_set():
            return out
        timeframe = intervals[0][0]
        if failed:
            log.warning("warm-up: cannot fetch the %s candles of %s from %s (%s); %s without"
                        " warm-up", timeframe, ", ".join(failed), self._cfg.name, why,
                        "they start" if len(failed) > 1 else "it starts")  # fmt: skip
        if plan.holes:
            log.warning("warm-up: the %s candles of %s have a hole, still there when asked"
                        " again: none of %s; the strategies learn from the bars after it"
                        " only", timeframe, self._cfg.name,
                        "; ".join(plan.holes.values()))  # fmt: skip
        if behind:
            since = ", ".join(f"{s} from {iso_utc(out[s][-1].ts)}" for s in behind)
            log.warning("warm-up: %s has not closed the %s candles of %s on (its clock"
                        " behind the bot's?); the strategies miss the bars from there to"
                        " the first live one", self._cfg.name, timeframe, since)  # fmt: skip
        return out

    async def _catch_up(
        self, out: dict[str, list[Candle]], bars: Mapping[str, int], plan: "_Plan"
    ) -> list[str]:
        """Ask again for the symbols whose candles end before the bar the bot's clock is in
        (where its live bars begin): a candle closed while the others were fetched, or the
        exchange had not closed it yet (its clock behind the bot's: asked again after a
        pause). The symbols still behind after `exchange.max_retries` rounds."""
        backoff = self._new_backoff(self._seed)
        behind = self._behind(out, plan.timeframe_ms)
        for attempt in range(self._cfg.max_retries):
            if not behind or self._stop_event.is_set():
                break
            if attempt:  # asked again at once: the exchange has not closed it yet
                await self._pause(backoff.next_delay_ms())
            for symbol in behind:
                got = await self._on_grid(symbol, plan, bars[symbol])
                if not isinstance(got, str):
                    out[symbol] = got
            behind = self._behind(out, plan.timeframe_ms)
        return behind

    def _behind(self, out: Mapping[str, list[Candle]], timeframe_ms: int) -> list[str]:
        now = self._clock()
        live_from = now - now % timeframe_ms  # the bar the live feed starts in
        return [symbol for symbol, got in out.items() if got and got[-1].ts < live_from]

    async def _on_grid(self, symbol: str, plan: "_Plan", count: int) -> list[Candle] | str:
        """_closed_candles of the first of `plan.intervals` (longest first) whose candles
        open on the bot's bars; those that do not are dropped from it (Binance's weeks
        open on Mondays: the bot's weeks are built from its days)."""
        intervals = plan.intervals
        while True:
            try:
                return await self._closed_candles(symbol, plan, count)
            except _OffGrid as exc:
                if len(intervals) == 1:
                    return str(exc)
                log.debug("warm-up: %s; built from %s candles", exc, intervals[1][0])
                del intervals[0]

    async def _closed_candles(self, symbol: str, plan: "_Plan", count: int) -> list[Candle] | str:
        """The bars, or why there are none (one line): the exchange's closed candles of
        `plan.intervals[0]`, aggregated to the bars' timeframe when it is finer. The newest
        kline is the one the exchange's clock is inside of, still open whatever the bot's
        clock says (one ahead of the exchange's took its prices so far for a closed bar);
        one that closed on the exchange but not yet by the bot's clock is left to the live
        bar the bot builds of it. A hole in the klines is asked for once more; one still
        there is noted in `plan.holes`, and only the bars after it are kept."""
        interval, timeframe_ms = plan.intervals[0], plan.timeframe_ms
        # a bar the first candle is inside of, the open one
        limit = min((count + 1) * (timeframe_ms // interval[1]), WARMUP_PAGES * KLINES_PAGE)
        try:
            closed = await self._latest_closed(symbol, interval, limit)
            if last_hole(closed, interval[1]) is not None:  # a page may have come back short
                closed = await self._latest_closed(symbol, interval, limit)
        except _Stopped:
            return "stopped"
        except GaveUp as exc:
            self.errors += 1
            return exc.last
        except ccxt_async.BaseError as exc:  # refused: asking again cannot fix it
            self.errors += 1
            return one_line(exc, 160)
        hole = last_hole(closed, interval[1])
        plan.holes.pop(symbol, None)
        if hole is not None:
            start, end = hole
            plan.holes[symbol] = (f"{symbol} from {iso_utc(start)} to {iso_utc(end)}"
                                  f" ({(end - start) // interval[1]} candles)")  # fmt: skip
            closed = [c for c in closed if c.open_time >= end]
        return whole_bars(closed, timeframe_ms)[-count:] if count > 0 else []

    async def _latest_closed(
        self, symbol: str, interval: tuple[str, int], limit: int
    ) -> list[Candle]:
        """The latest `limit` klines closed on the exchange and by the bot's clock (the
        newest one the exchange gives is open), in one request or in pages."""
        if limit <= KLINES_PAGE:
            rows = await self._klines(symbol, interval, None, limit)
        else:
            rows = await self._klines_since(symbol, interval, limit)
        now = self._clock()
        return [c for c in rows[:-1] if c.ts <= now][-limit:]

    async def _klines_since(
        self, symbol: str, interval: tuple[str, int], limit: int
    ) -> list[Candle]:
        """The latest `limit` klines (about: the bot's clock says where they begin) in
        pages from their first, until a page brings none after the last or they pass the
        bot's clock; a kline a page repeats from the one before is kept once."""
        width = interval[1]
        now = self._clock()
        cursor = now - now % width - (limit - 1) * width
        out: list[Candle] = []
        for _ in range(-(-limit // KLINES_PAGE) + 1):  # the last may hold only the open one
            page = [c for c in await self._klines(symbol, interval, cursor, KLINES_PAGE)
                    if c.open_time >= cursor]  # fmt: skip
            if not page:
                break
            out += page
            cursor = page[-1].open_time + width
            if cursor > self._clock():
                break
        return out

    async def _klines(
        self, symbol: str, interval: tuple[str, int], since: int | None, limit: int
    ) -> list[Candle]:
        """One klines request (the latest `limit`, or `limit` from `since`), retried
        through network errors and unusable answers (exchange.retrying)."""
        name, width = interval
        ccxt_symbol = self._ccxt_symbols[symbol]
        asked: dict[str, Any] = {"limit": limit}
        if since is not None:
            asked["since"] = since

        async def fetch() -> list[Candle]:
            if self._stop_event.is_set():
                raise _Stopped
            rows = await self._exchange.fetch_ohlcv(ccxt_symbol, name, **asked)
            return candles_of(symbol, rows, width)

        def failed(why: str, wait_ms: int) -> None:
            self.errors += 1
            log.debug("warm-up: %s candles (again in %d ms): %s", symbol, wait_ms, why)

        return await retried(
            fetch,
            exchange=self._exchange,
            backoff=self._new_backoff(self._seed),
            max_retries=self._cfg.max_retries,
            pause=self._pause,
            on_retry=failed,
            also_passing=(_Unusable,),
        )


@dataclass(slots=True)
class _Plan:
    """One warm-up's fetch: the intervals to build its bars from (longest first: those
    whose klines open off the bot's bars are dropped as found), the bars' timeframe,
    and the holes the exchange's klines keep (symbol: a description)."""

    intervals: list[tuple[str, int]]
    timeframe_ms: int
    holes: dict[str, str] = field(default_factory=dict)


def last_hole(candles: list[Candle], width: int) -> tuple[int, int] | None:
    """(the open time of the first missing candle, that of the candle after them) of the
    latest hole in consecutive `candles` of `width`, None when they follow on."""
    for before, after in zip(reversed(candles[:-1]), reversed(candles), strict=False):
        if after.open_time - before.open_time > width:
            return before.open_time + width, after.open_time
    return None


def exchange_intervals(exchange: Any, timeframe_ms: int) -> list[tuple[str, int]]:
    """The exchange's candle intervals (ccxt's `timeframes`: name, ms) to build bars of
    `timeframe_ms` from, longest first: that one, else those that divide it (Binance has
    1m and 5m klines, no 2m nor 10m); none when none does."""
    found: dict[int, str] = {}
    for name in getattr(exchange, "timeframes", None) or {}:
        try:
            width = int(exchange.parse_timeframe(name) * 1000)
        except (TypeError, ValueError, ccxt_async.BaseError):
            continue
        if width > 0 and timeframe_ms % width == 0:
            found.setdefault(width, str(name))
    return [(found[width], width) for width in sorted(found, reverse=True)]


def whole_bars(candles: list[Candle], timeframe_ms: int) -> list[Candle]:
    """The bars of `timeframe_ms` of consecutive closed `candles` (as they are when
    their interval is it), aggregated as a backtest's finer candles are (CandleAggregator):
    only those whose candles all closed, not one the candles start inside of."""
    if not candles or candles[0].ts - candles[0].open_time == timeframe_ms:
        return candles
    aggregator = CandleAggregator(timeframe_ms)
    bars = (aggregator.add(c) for c in candles)
    first = candles[0].open_time  # a bar opening before it is only partly in the candles
    return [bar for bar in bars if bar is not None and bar.open_time >= first]


def candles_of(symbol: str, rows: Any, timeframe_ms: int) -> list[Candle]:
    """ccxt's OHLCV `rows` as candles, oldest first. _Unusable when a row is not a
    candle (a missing or non-finite price, a negative volume) or the rows are out of
    order; _OffGrid when a candle opens off the bot's bars of `timeframe_ms` (multiples
    of it since the epoch, feeds.bars): Binance opens its weeks on Mondays (the epoch's
    on Thursdays) and its months on the 1st (ccxt's '1M' is 30 days), so their candles
    would overlap the bot's live bars."""
    if not isinstance(rows, list):
        raise _Unusable(f"klines answer is not a list ({type(rows).__name__})")
    out: list[Candle] = []
    for row in rows:
        candle = _candle(symbol, row, timeframe_ms)
        if candle.open_time % timeframe_ms:
            bars = format_duration(timeframe_ms)
            raise _OffGrid(f"its candles open at {iso_utc(candle.open_time)}, off the"
                           f" bot's {bars} bars (aligned to the epoch)")  # fmt: skip
        if out and candle.open_time <= out[-1].open_time:
            raise _Unusable(f"klines out of order at {candle.open_time}")
        out.append(candle)
    return out


def _candle(symbol: str, row: Any, timeframe_ms: int) -> Candle:
    if not isinstance(row, list | tuple) or len(row) < 6:
        raise _Unusable(f"kline {str(row)[:60]} is not [time, open, high, low, close, volume]")
    open_time, *values = row[:6]
    prices = values[:4]
    volume = values[4] if values[4] is not None else 0.0
    numbers = (*prices, volume)
    if (
        not isinstance(open_time, int | float)
        or not all(isinstance(v, int | float) and math.isfinite(v) for v in numbers)
        or not all(p > 0 for p in prices)
        or volume < 0
    ):
        raise _Unusable(f"kline {str(row)[:60]} has no usable prices")
    o, h, low, c = (float(p) for p in prices)
    start = int(open_time)
    return Candle(ts=start + timeframe_ms, symbol=symbol, open_time=start, open=o,
                  high=h, low=low, close=c, volume=float(volume))  # fmt: skip
