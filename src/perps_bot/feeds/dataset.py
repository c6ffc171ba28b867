"""Historical data of one or more symbols, loaded once and cut into time ranges.

Why a dataset object: an optimisation runs thousands of backtests over the same
candles and a walk-forward runs them over windows of it. Files are read and
validated once (feeds.loaders); each run gets a fresh feed over the arrays, or over a
window of them (`between`), without copying (numpy slices are views). The object is
plain arrays, so it pickles to worker processes and goes into Ray's object store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np

from perps_bot.domain import iso_utc
from perps_bot.feeds.base import Feed, FeedError
from perps_bot.feeds.historical import DEFAULT_BATCH_SIZE, CandleFeed
from perps_bot.feeds.loaders import (
    CandleArrays,
    FundingArrays,
    MarkArrays,
    load_candles,
    load_funding,
    load_marks,
)
from perps_bot.feeds.merged import MergedCandleFeed

_C = TypeVar("_C", bound=CandleArrays)


@dataclass(frozen=True, slots=True)
class SymbolData:
    symbol: str
    candles: CandleArrays
    funding: FundingArrays | None = None
    mark: MarkArrays | None = None


@dataclass(frozen=True, slots=True)
class Dataset:
    """Validated candles (with optional funding and mark series) of each symbol."""

    symbols: tuple[SymbolData, ...]
    funding_interval_ms: int
    default_funding_rate: float

    @classmethod
    def load(
        cls,
        symbols: Sequence[str],
        data: Sequence[Path],
        *,
        funding: Sequence[Path] = (),
        mark: Sequence[Path] = (),
        funding_interval_ms: int,
        default_funding_rate: float,
        fill_gaps: bool = False,
    ) -> Dataset:
        """One data file per symbol (same order); funding and mark files, when given,
        one per symbol too. FeedError (one line) on anything that does not fit."""
        if len(data) != len(symbols):
            raise FeedError(f"give one --data file per --symbol ({len(symbols)} symbols,"
                            f" {len(data)} files)")  # fmt: skip
        for what, files in (("--funding", funding), ("--mark", mark)):
            if files and len(files) != len(symbols):
                raise FeedError(f"give one {what} file per --symbol or none")
        out = []
        for i, symbol in enumerate(symbols):
            out.append(
                SymbolData(
                    symbol,
                    load_candles(data[i], fill_gaps=fill_gaps),
                    None
                    if not funding
                    else load_funding(
                        funding[i], interval_ms=funding_interval_ms, fill_gaps=fill_gaps
                    ),
                    None if not mark else load_marks(mark[i], fill_gaps=fill_gaps),
                )
            )
        return cls(tuple(out), funding_interval_ms, default_funding_rate)

    @property
    def names(self) -> list[str]:
        return [s.symbol for s in self.symbols]

    @property
    def interval_ms(self) -> int:
        return self.symbols[0].candles.interval_ms

    @property
    def start_ts(self) -> int:
        """Open time of the earliest candle."""
        return min(int(s.candles.open_time[0]) for s in self.symbols)

    @property
    def end_ts(self) -> int:
        """Close time of the latest candle."""
        return max(int(s.candles.close_time[-1]) for s in self.symbols)

    def __len__(self) -> int:
        return sum(len(s.candles) for s in self.symbols)

    def between(self, start_ms: int | None, end_ms: int | None) -> Dataset:
        """The candles that open at or after `start_ms` and close at or before `end_ms`
        (funding and marks cut alike): nothing of the data outside the range is left."""
        cut = []
        for s in self.symbols:
            candles = _window(s.candles, start_ms, end_ms)
            if len(candles) == 0:
                raise FeedError(
                    f"{s.symbol}: no candles between {_when(start_ms, 'the start')} and"
                    f" {_when(end_ms, 'the end')}"
                    f" (the data covers {iso_utc(int(s.candles.open_time[0]))} to"
                    f" {iso_utc(int(s.candles.close_time[-1]))})"
                )
            funding = None if s.funding is None else _funding_window(s.funding, start_ms, end_ms)
            mark = None if s.mark is None else _window(s.mark, start_ms, end_ms)
            cut.append(SymbolData(s.symbol, candles, funding, mark))
        return replace(self, symbols=tuple(cut))

    def feed(self, batch_size: int = DEFAULT_BATCH_SIZE) -> Feed:
        """A fresh feed over the data: a CandleFeed for one symbol, else their merge."""
        feeds = [
            CandleFeed(
                s.symbol,
                s.candles,
                funding=s.funding,
                mark=s.mark,
                funding_interval_ms=self.funding_interval_ms,
                default_funding_rate=self.default_funding_rate,
                batch_size=batch_size,
            )
            for s in self.symbols
        ]
        if len(feeds) == 1:
            return feeds[0]
        merged = MergedCandleFeed(feeds)
        merged.require_overlap()
        return merged


def _when(ts: int | None, open_end: str) -> str:
    return open_end if ts is None else iso_utc(ts)


def _window(candles: _C, start_ms: int | None, end_ms: int | None) -> _C:
    lo = 0 if start_ms is None else int(np.searchsorted(candles.open_time, start_ms, "left"))
    hi = len(candles)
    if end_ms is not None:
        hi = int(np.searchsorted(candles.close_time, end_ms, "right"))
    hi = max(hi, lo)
    return replace(
        candles,
        open_time=candles.open_time[lo:hi],
        open=candles.open[lo:hi],
        high=candles.high[lo:hi],
        low=candles.low[lo:hi],
        close=candles.close[lo:hi],
        volume=candles.volume[lo:hi],
    )


def _funding_window(
    funding: FundingArrays, start_ms: int | None, end_ms: int | None
) -> FundingArrays:
    lo = 0 if start_ms is None else int(np.searchsorted(funding.ts, start_ms, "left"))
    hi = (
        funding.ts.shape[0] if end_ms is None else int(np.searchsorted(funding.ts, end_ms, "right"))
    )
    return replace(funding, ts=funding.ts[lo:hi], rate=funding.rate[lo:hi])
