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
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import numpy as np
import numpy.typing as npt

from perps_bot.config.models import ExchangeConfig
from perps_bot.domain import (
    PerpsBotError,
    format_duration,
    iso_utc,
    parse_duration,
    short,
    short_path,
)
from perps_bot.domain.numbers import finite_number
from perps_bot.exchange.backoff import backoff_of
from perps_bot.exchange.retrying import GaveUp, retried
from perps_bot.exchange.runtime import one_line
from perps_bot.feeds.exchange_warmup import KLINES_PAGE
from perps_bot.feeds.loaders import funding_problems, value_problems
from perps_bot.feeds.row_checks import first_problem, safe_iso
from perps_bot.feeds.series_files import Row, SeriesFile, SeriesLock, dates_ms

CANDLE_FIELDS = ("time", "open", "high", "low", "close", "volume")
CANDLE_PAGE = KLINES_PAGE
FUNDING_PAGE = 1_000
FUNDING_INTERVAL = "8h"


class DownloadError(PerpsBotError):
    """The exchange refused or kept failing; one line (the pages so far are kept)."""


@dataclass(frozen=True, slots=True)
class Series:
    """One file to fill: a symbol's candles, mark candles or funding history."""

    symbol: str  # the bot's name, e.g. BTC-PERP
    exchange_symbol: str  # ccxt's, e.g. BTC/USDT:USDT
    kind: str  # "candles" | "mark" | "funding"
    interval_ms: int
    path: Path


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
            _check_values(rows, series)
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
            return _funding_rows(got, series)
        params = until | ({"price": "mark"} if series.kind == "mark" else {})
        got = await self._retrying(lambda: client.fetch_ohlcv(
            symbol, self.timeframe, since=cursor, limit=CANDLE_PAGE, params=params))  # fmt: skip
        return _once_each([_candle_row(row, series) for row in got], series)

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


def _candle_row(row: Sequence[Any], series: Series) -> Row:
    """One ccxt candle as [ms, open, high, low, close, volume] floats. A value ccxt
    could not read comes back None: refused (a 0 or a skipped row would be stored as
    market data and replayed by every backtest)."""
    values = [finite_number(x) for x in row[:6]]
    found = [x for x in values if x is not None]
    if len(found) < 6:
        missing = CANDLE_FIELDS[values.index(None) if None in values else len(values)]
        raise _page_refused(series, missing, values[0] if values else None)
    return found


def _page_refused(series: Series, missing: str, ts: float | None) -> DownloadError:
    """A page with a value ccxt could not read (None): refused whole, naming the field
    and, when it has one, the row's time (a 0 or a skipped row would be stored as
    market data and replayed by every backtest)."""
    when = f" at {safe_iso(int(ts))}" if ts is not None else ""
    return DownloadError(
        f"the exchange sent {describe(series)} with no {missing}{when}: nothing of"
        " that page is kept; run the command again later"
    )


def _check_values(rows: Sequence[Row], series: Series) -> None:
    """A page's rows pass the backtest's value checks (feeds.loaders) before they are
    staged: a high below the low, a price of 0 or a negative volume was written without
    a word and the backtest refused the file later. The pages before it are kept."""
    data = np.asarray(rows, dtype=np.float64).reshape(len(rows), 6)
    o, h, lo, c, v = (data[:, i] for i in range(1, 6))
    if series.kind == "funding":
        problems = funding_problems(o)
    else:
        problems = value_problems(o, h, lo, c, v if series.kind == "candles" else None)
    found = first_problem(problems)
    if found is not None:
        i, text = found
        raise DownloadError(
            f"the exchange sent {describe(series)} with a bad row at"
            f" {safe_iso(int(data[i, 0]))}: {text}: nothing of that page is kept"
            " (the pages before it are); run the command again later"
        )


def _once_each(rows: list[Row], series: Series) -> list[Row]:
    """A page's rows with a row listed again (overlapping pages) kept once; two different
    rows for one time are refused: which of them is the market?"""
    seen: dict[float, Row] = {}
    for row in rows:
        known = seen.setdefault(row[0], row)
        if list(known) != list(row):
            raise DownloadError(
                f"the exchange sent two different {describe(series)} for"
                f" {safe_iso(int(row[0]))}: nothing of that page is kept; run the command"
                " again later"
            )
    return list(seen.values())


def _funding_rows(entries: Sequence[dict[str, Any]], series: Series) -> list[Row]:
    """ccxt's funding history as [time floored to the interval, rate x4, 0] rows; an
    entry without a time or a rate is refused (skipping it would leave a hole)."""
    rows: list[Row] = []
    step = series.interval_ms
    for entry in entries:
        ts, rate = finite_number(entry.get("timestamp")), finite_number(entry.get("fundingRate"))
        if ts is None or rate is None:
            raise _page_refused(series, "time" if ts is None else "rate", ts)
        floored = float(int(ts) // step * step)
        if rows and list(rows[-1]) == [floored, rate, rate, rate, rate, 0.0]:
            continue  # the same settlement listed again (overlapping pages)
        if rows and rows[-1][0] == floored:
            raise DownloadError(
                f"the exchange sent two funding settlements of {series.symbol} within one"
                f" {format_duration(step)} interval (at {safe_iso(int(ts))}): set"
                " account.funding_interval to its schedule, e.g."
                " PERPS_BOT__ACCOUNT__FUNDING_INTERVAL=4h"
            )
        rows.append([floored, rate, rate, rate, rate, 0.0])
    _check_schedule(rows, series)
    return rows


def _check_schedule(rows: Sequence[Row], series: Series) -> None:
    """Settlements never closer than two funding intervals (a page of three or more,
    so one the exchange missed does not count) are a schedule longer than
    account.funding_interval: the file would hold one funding time in two or more, a
    gap the backtest refuses (or, with --fill-gaps, charges at the default rate)."""
    if len(rows) < 3:
        return
    closest = int(min(b[0] - a[0] for a, b in pairwise(rows)))
    if closest >= 2 * series.interval_ms:
        every = format_duration(closest)
        raise DownloadError(
            f"the exchange settles {series.symbol} funding every {every}, not every"
            f" {format_duration(series.interval_ms)} (account.funding_interval): set it to"
            f" the exchange's schedule, e.g. PERPS_BOT__ACCOUNT__FUNDING_INTERVAL={every}"
        )


def describe(series: Series) -> str:
    what = {"candles": "candles", "mark": "mark-price candles", "funding": "funding rates"}
    return f"{series.symbol} {what[series.kind]} ({format_duration(series.interval_ms)})"
