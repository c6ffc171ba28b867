"""`perps-bot data download` (SPEC 13): candles, funding-rate history and mark-price
candles from the exchange through ccxt, written as Feather files the backtester reads.

- Paginated: requests of up to 1,000 candles (and 1,000 funding settlements), from the
  last time received, until the range is covered; only candles closed on the exchange's
  clock are kept (the range ends at its time, asked once per file).
- Incremental and resumable: each file's staged pages are compacted first
  (feeds.series_files), then only what is missing before its first row, between its
  rows or after its last row is fetched (the file stays one contiguous range). A
  second call with the same range fetches nothing.
- Rate-limit aware: a 429 or 418 waits the exchange's Retry-After (never less than the
  backoff); network errors and the exchange's passing failures (ccxt's
  OperationFailed: an internal error, an answer that is not JSON) back off
  exponentially; after exchange.max_retries failed tries in a row the download stops
  with one line (the pages so far are kept).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import numpy as np
import numpy.typing as npt

from perps_bot.config.models import ExchangeConfig
from perps_bot.domain import (
    format_duration,
    iso_utc,
    parse_duration,
    short,
    short_path,
)
from perps_bot.exchange.backoff import backoff_of
from perps_bot.exchange.retrying import GaveUp, retried
from perps_bot.exchange.runtime import one_line
from perps_bot.feeds.download_rows import (
    DownloadError,
    Series,
    candle_row,
    check_values,
    describe,
    funding_rows,
    once_each,
)
from perps_bot.feeds.exchange_warmup import KLINES_PAGE
from perps_bot.feeds.series_files import Row, SeriesFile, SeriesLock, dates_ms

__all__ = [
    "DownloadError",
    "Downloader",
    "Series",
    "check_listed",
    "check_timeframe",
    "describe",
    "series_for",
]

CANDLE_PAGE = KLINES_PAGE
FUNDING_PAGE = 1_000
FUNDING_INTERVAL = "8h"


def series_for(
    symbol: str,
    exchange_symbol: str,
    timeframe: str,
    out: Path,
    *,
    funding: bool,
    mark: bool,
    funding_interval: str = FUNDING_INTERVAL,
) -> list[Series]:
    """The files of one symbol: `SYMBOL-TF.feather`, `SYMBOL-TF-mark.feather`,
    `SYMBOL-8h-funding.feather` (the profile's account.funding_interval)."""
    step = parse_duration(timeframe)
    found = [
        Series(symbol, exchange_symbol, "candles", step, out / f"{symbol}-{timeframe}.feather")
    ]
    if mark:
        path = out / f"{symbol}-{timeframe}-mark.feather"
        found.append(Series(symbol, exchange_symbol, "mark", step, path))
    if funding:
        path = out / f"{symbol}-{funding_interval}-funding.feather"
        found.append(Series(symbol, exchange_symbol, "funding",
                            parse_duration(funding_interval), path))  # fmt: skip
    return found


def check_listed(client: Any, wanted: Sequence[Series]) -> None:
    """Every symbol is one of the exchange's markets (loaded by the caller), checked
    before the first request: one it does not list failed only when its turn came,
    after the other symbols' downloads."""
    markets = getattr(client, "markets", None) or {}
    missing = dict.fromkeys(f"{s.symbol} ({s.exchange_symbol})" for s in wanted
                            if s.exchange_symbol not in markets)  # fmt: skip
    if missing:
        raise DownloadError(f"not listed on the exchange: {short(', '.join(missing))};"
                            " nothing was downloaded")  # fmt: skip


def check_timeframe(client: Any, timeframe: str) -> None:
    """The exchange must serve `timeframe` as the duration perps-bot reads it as: ccxt
    passes the text through, and to it `1M` is a month (perps-bot reads durations
    case-insensitively: a minute). No request is made."""
    served = list(getattr(client, "timeframes", None) or {})
    if not served:
        return  # the client does not say; the exchange's answer will
    fixed = ", ".join(t for t in served if _fixed_length(client, t))
    if timeframe not in served:
        raise DownloadError(f"bad --timeframe {short(timeframe)!r}: not one of the exchange's"
                            f" timeframes ({fixed})")  # fmt: skip
    if not _fixed_length(client, timeframe):
        raise DownloadError(
            f"bad --timeframe {timeframe!r}: the exchange reads it as a month, perps-bot as"
            f" {format_duration(parse_duration(timeframe))}; candles of a fixed length"
            f" only: {fixed}"
        )


def _fixed_length(client: Any, name: str) -> bool:
    """The exchange's candles of `name` have the length perps-bot reads in it (not a
    month, which ccxt stands in for with 30 days, nor a year)."""
    try:
        ours = parse_duration(name)
    except ValueError:
        return False
    return not name.endswith(("M", "y")) and int(client.parse_timeframe(name) * 1000) == ours


class Downloader:
    """Fills series files from one ccxt client (markets loaded by the caller)."""

    def __init__(
        self,
        client: Any,
        cfg: ExchangeConfig,
        *,
        timeframe: str,
        say: Callable[[str], None] = lambda text: None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        check_timeframe(client, timeframe)
        self.client, self.cfg, self.timeframe = client, cfg, timeframe
        self.say, self.sleep = say, sleep
        self.requests = 0
        self._served: dict[str, int] = {}  # the most rows a page of each kind has held

    async def fill(self, series: Series, since: int, until: int) -> int:
        """Fetch what `series.path` lacks of [since, until); return rows added."""
        file = SeriesFile(series.path)
        try:
            series.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DownloadError(f"cannot write to {short_path(series.path.parent)}"
                                f" ({exc.strerror or exc})") from None  # fmt: skip
        with SeriesLock(series.path):
            return await self._fill(series, file, since, until)

    async def _fill(self, series: Series, file: SeriesFile, since: int, until: int) -> int:
        table = file.compact()  # pages of an interrupted run first
        until = min(until, await self._exchange_now(until))
        step = series.interval_ms
        # candles: the last one closes at or before `until`, on the exchange's grid
        # (Binance's weeks open on Mondays, the epoch's on Thursdays); funding: the
        # settlements at or before `until` (the backtest settles one at the last
        # candle's close, which may be `until`)
        end = until if series.kind != "funding" else until // step * step + step
        ranges = [(since, end)]
        if table is not None and table.num_rows:
            ts = dates_ms(table)
            _check_step(ts, series)
            ranges = _missing(ts, since, end, step)
        added = 0
        try:
            for lo, hi in ranges:
                added += await self._fetch_range(series, file, lo, hi)
        except DownloadError:  # the pages so far are the file the backtest reads
            file.compact()
            raise
        file.compact()
        return added

    async def _fetch_range(self, series: Series, file: SeriesFile, start: int, end: int) -> int:
        step = series.interval_ms
        candles = series.kind != "funding"
        cursor = start if candles else -(-start // step) * step
        added, hole = 0, None
        while (cursor + step <= end) if candles else (cursor < end):
            page = await self._page(series, cursor, end)
            self._served[series.kind] = max(self._served.get(series.kind, 0), len(page))
            rows = [r for r in page if r[0] >= cursor and
                    (r[0] + step <= end if candles else r[0] < end)]  # fmt: skip
            if not rows and any(r[0] >= cursor for r in page):
                break  # its rows are past the range: nothing more in it
            if not rows:  # a page of nothing inside the range: a hole in the exchange's
                hole = cursor if hole is None else hole  # history; the rows after it
                cursor += self._page_rows(series) * step  # count too
                continue
            check_values(rows, series)
            self._say_holes(series, cursor if hole is None else hole, rows)
            hole = None
            file.add_page(rows)
            added += len(rows)
            cursor = int(rows[-1][0]) + step
            self.say(f"{series.path.name}: {added} rows, up to {iso_utc(cursor)}")
        if hole is not None:
            self._say_hole(series, hole, end)
        return added

    def _page_rows(self, series: Series) -> int:
        """How many rows an empty page stood for: the most a page of this kind has held
        (the exchange's page, which may be shorter than the one asked: okx serves 300
        candles, bitget 200), else the smaller of the page asked and the one ccxt says
        the exchange serves. Moving on by the page asked skipped, on such an exchange,
        the candles after an empty page, said to be a hole of the exchange's. (Binance
        answers the rows after a hole, an empty page only when none is left.)"""
        served = self._served.get(series.kind, 0)
        if served:
            return served
        if series.kind == "funding":
            return FUNDING_PAGE
        return min(CANDLE_PAGE, _declared_page(self.client, series))

    def _say_holes(self, series: Series, since: int, rows: Sequence[Row]) -> None:
        """The holes before a page's first row (from `since`) and between its rows:
        Binance answers the rows after a hole in the same page."""
        step = series.interval_ms
        starts = [since, *(int(r[0]) + step for r in rows[:-1])]
        for begin, row in zip(starts, rows, strict=True):
            if row[0] - begin >= step:
                self._say_hole(series, begin, int(row[0]))

    def _say_hole(self, series: Series, start: int, end: int) -> None:
        """Rows the exchange does not have (an outage, a listing or a delisting inside
        the range): said, not passed over, since the file then has a hole the backtest
        refuses (or fills, with --fill-gaps) or ends before --until."""
        noun = {"candles": "candles", "mark": "mark-price candles", "funding": "funding rates"}
        self.say(f"{series.path.name}: the exchange has no {noun[series.kind]} from"
                 f" {iso_utc(start)} to {iso_utc(end)}")  # fmt: skip

    async def _page(self, series: Series, cursor: int, end: int) -> list[Row]:
        client, symbol = self.client, series.exchange_symbol
        until = {"until": end - 1}
        if series.kind == "funding":
            got = await self._retrying(lambda: client.fetch_funding_rate_history(
                symbol, since=cursor, limit=FUNDING_PAGE, params=until))  # fmt: skip
            return funding_rows(got, series)
        params = until | ({"price": "mark"} if series.kind == "mark" else {})
        got = await self._retrying(lambda: client.fetch_ohlcv(
            symbol, self.timeframe, since=cursor, limit=CANDLE_PAGE, params=params))  # fmt: skip
        return once_each([candle_row(row, series) for row in got], series)

    async def _exchange_now(self, until: int) -> int:
        """The exchange's time (`until` when it cannot say), which caps the download's
        `until`: the last candle kept closes by it. `--until` and now are the machine's
        clock; one a few seconds ahead of the exchange's took the candle still open there
        (its prices so far) for closed, and a file that has a candle never fetches it
        again."""
        if not (getattr(self.client, "has", None) or {}).get("fetchTime"):
            return until
        try:
            told = await self._retrying(self.client.fetch_time)
        except DownloadError:  # the klines will say what is wrong, if anything is
            return until
        return int(told) if isinstance(told, int | float) and told > 0 else until

    async def _retrying(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """One request, retried (exchange.retrying); a refusal, or failures after
        exchange.max_retries tries in a row, is one line."""
        cfg = self.cfg

        async def counted() -> Any:
            self.requests += 1
            return await call()

        async def pause(wait_ms: int) -> None:
            await self.sleep(wait_ms / 1000.0)

        try:
            return await retried(
                counted,
                exchange=self.client,
                backoff=backoff_of(cfg),
                max_retries=cfg.max_retries,
                pause=pause,
                on_retry=lambda why, wait_ms: self.say(f"waiting {wait_ms / 1000.0:.1f} s: {why}"),
            )
        except GaveUp as exc:
            raise DownloadError(
                f"download stopped after {exc.tries} failed tries in a row: {exc.last};"
                " run the command again to go on from the last page saved"
            ) from None
        except ccxt_async.BaseError as exc:
            raise DownloadError(
                f"the exchange refused the download: {one_line(exc, 200)}"
            ) from None


def _declared_page(client: Any, series: Series) -> int:
    """The most candles a page holds as ccxt's `features` of the exchange declare it for
    the symbol's market (mark-price candles may have their own); CANDLE_PAGE if not."""
    market = (getattr(client, "markets", None) or {}).get(series.exchange_symbol) or {}
    sub = "inverse" if market.get("inverse") else "linear"
    features = getattr(client, "features", None)
    for key in (market.get("type") or "swap", sub, "fetchOHLCV"):
        features = features.get(key) if isinstance(features, dict) else None
    if not isinstance(features, dict):
        return CANDLE_PAGE
    limit = features.get("mark" if series.kind == "mark" and "mark" in features else "limit")
    return limit if isinstance(limit, int) and limit > 0 else CANDLE_PAGE


def _check_step(ts: npt.NDArray[np.int64], series: Series) -> None:
    """The file's rows are the series' interval apart (but for holes): a file of another
    timeframe under its name (copied, renamed) would have its holes filled with these
    candles, a file the backtest reads in which some candles span another length."""
    if ts.shape[0] < 2:
        return
    gaps, step = np.diff(ts), series.interval_ms
    closest = int(gaps.min())
    if closest != step or bool(np.any(gaps % step)):
        raise DownloadError(
            f"{short_path(series.path)}: its rows are {format_duration(closest)} apart, not"
            f" {format_duration(step)}: another timeframe's file? move it away or download"
            " into another --out"
        )


def _missing(ts: npt.NDArray[np.int64], since: int, end: int, step: int) -> list[tuple[int, int]]:
    """The ranges a file with rows at `ts` lacks of [since, end): before its first row,
    every hole between its rows, after its last. The file stays one contiguous range:
    what lies between it and the asked range is fetched too (a backtest refuses a file
    with a hole), and so is a hole an interrupted backfill left between the pages it
    saved and the rows the file had (a hole the exchange has too costs one request)."""
    holes = np.flatnonzero(np.diff(ts) > step)
    inner = [(int(ts[i]) + step, int(ts[i + 1])) for i in holes]
    return [(since, int(ts[0])), *inner, (int(ts[-1]) + step, end)]
