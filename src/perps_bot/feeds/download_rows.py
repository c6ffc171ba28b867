"""What a page of the exchange's answer becomes for `data download` (feeds.download):
rows of [ms, open, high, low, close, volume], each page checked whole before it is
staged, since a row the backtest refuses (or a value made up for one ccxt could not
read) would be written as market data and replayed by every backtest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from perps_bot.domain import PerpsBotError, format_duration
from perps_bot.domain.numbers import finite_number
from perps_bot.feeds.loaders import funding_problems, value_problems
from perps_bot.feeds.row_checks import first_problem, safe_iso
from perps_bot.feeds.series_files import Row

CANDLE_FIELDS = ("time", "open", "high", "low", "close", "volume")


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


def candle_row(row: Sequence[Any], series: Series) -> Row:
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


def check_values(rows: Sequence[Row], series: Series) -> None:
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


def once_each(rows: list[Row], series: Series) -> list[Row]:
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


def funding_rows(entries: Sequence[dict[str, Any]], series: Series) -> list[Row]:
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
