"""CandleFeed: historical candles (plus funding and mark series) as a simulated feed.

The backtest is not a separate engine: this feed plugs into the same orchestrator,
venue, risk gate, ledger and storage as the dev profile. It only decides which
market events happen and in what order:

- Each candle is emitted when it closes: `Candle.ts` is the close time
  (open_time + interval); `open_time` is kept for the venue's price path walk.
- `Candle.mark` is the close of the latest mark candle that closed at or before
  the candle's close (within one mark interval, else None: the close is the mark).
  `mark_high` / `mark_low` are the extremes of the mark candles that lie inside the
  candle's span (opened at or after its open, closed by its close), when there are
  any. A mark candle longer than the candles gives its extremes to none of them:
  when inside it they happened is not known (the candles inside it follow their
  last-price path and see the latest mark close). Nothing later than `ts` leaks in.
- Funding settles at every multiple of the funding interval (00/08/16 UTC for 8h)
  after the first candle's open, up to the last candle's close (one inside the
  first candle too: 08:00 and 16:00 of a first 1d candle). The rate comes from the
  funding file where it has that time, else the profile's default rate (also for
  times outside the file's range; `funding_defaulted` counts them so the CLI can
  say so). The settlement is priced at the mark (or close) of the last candle
  closed at or before it (the first candle's open before any closed; a settlement
  inside a candle is priced again on its path by the orchestrator), and is emitted
  AFTER the candle closing at the same time: a position opened on that candle's
  close is held at the settlement instant.

Why precomputed arrays and batches: per-event Python work is the cost of a
backtest. Everything that can be vectorised (close times, mark alignment,
funding schedule and insertion points) is computed once with numpy; per batch the
columns become Python lists with `.tolist()` and Candles are built by `map` over
the class, so the feed stays a small fraction of the pipeline's time, and only
one batch of event objects exists at a time (bounded memory).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import numpy as np

from perps_bot.domain import (
    FundingRate,
    MarketEvent,
    format_duration,
    iso_utc,
    parse_duration,
)
from perps_bot.feeds.base import FeedError
from perps_bot.feeds.columns import CandleColumns
from perps_bot.feeds.loaders import (
    CandleArrays,
    FloatArray,
    FundingArrays,
    IntArray,
    MarkArrays,
    load_candles,
    load_funding,
    load_marks,
)

DEFAULT_BATCH_SIZE = 10_000
#: a mark this far from the candle's close (a fraction of it) is not the same market's
FOREIGN_MARK = 0.10


class CandleFeed:
    """A historical, simulated Feed over one symbol's candles."""

    simulated = True
    candle_history = True

    def __init__(
        self,
        symbol: str,
        candles: CandleArrays,
        *,
        funding: FundingArrays | None = None,
        mark: MarkArrays | None = None,
        funding_interval_ms: int,
        default_funding_rate: float,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if len(candles) == 0:
            raise FeedError(f"{symbol}: no candles to replay")
        if funding_interval_ms <= 0:
            raise FeedError(f"funding interval must be positive, got {funding_interval_ms} ms")
        if batch_size <= 0:
            raise FeedError(f"batch size must be positive, got {batch_size}")
        if funding is not None and funding.interval_ms != funding_interval_ms:
            raise FeedError(
                f"funding file floored to {funding.interval_ms} ms but the funding interval"
                f" is {funding_interval_ms} ms"
            )
        self.symbol = symbol
        self.candles = candles
        self.interval_ms = candles.interval_ms
        self.funding_interval_ms = funding_interval_ms
        self.default_funding_rate = default_funding_rate
        self.batch_size = batch_size
        self._close_time: IntArray = candles.close_time
        self._marks = _align_marks(candles, mark)
        self.has_mark_file = self.mark_extremes = mark is not None
        #: candles whose mark comes from the mark series (the rest use their close)
        self.mark_covered = 0 if self._marks is None else int((~np.isnan(self._marks[0])).sum())
        self._fund_ts, self._fund_rate, self._fund_mark, self._fund_pos, from_file = (
            self._funding_schedule(funding)
        )
        self.has_funding_file = funding is not None
        self.funding_from_file = from_file
        self.funding_defaulted = int(self._fund_ts.shape[0]) - from_file
        self._refuse_disjoint(funding, mark)
        self._refuse_foreign_marks()
        self._done = 0
        self._stopped = False

    @classmethod
    def from_files(
        cls,
        symbol: str,
        data: str | Path,
        *,
        funding: str | Path | None = None,
        mark: str | Path | None = None,
        funding_interval_ms: int,
        default_funding_rate: float,
        fill_gaps: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> CandleFeed:
        """Load and validate the files (FeedError on bad input), then build the feed."""
        candles = load_candles(data, fill_gaps=fill_gaps)
        funding_arrays = (
            None
            if funding is None
            else load_funding(funding, interval_ms=funding_interval_ms, fill_gaps=fill_gaps)
        )
        mark_arrays = None if mark is None else load_marks(mark, fill_gaps=fill_gaps)
        return cls(
            symbol,
            candles,
            funding=funding_arrays,
            mark=mark_arrays,
            funding_interval_ms=funding_interval_ms,
            default_funding_rate=default_funding_rate,
            batch_size=batch_size,
        )

    def _refuse_disjoint(self, funding: FundingArrays | None, mark: MarkArrays | None) -> None:
        """A funding or mark file that covers none of the candles is a wrong file (another
        symbol or period), not a file to ignore: replaying without it would be a silently
        different backtest. Partial cover is allowed; the CLI's description line says how
        much."""
        candles = f"the candles run {iso_utc(self.start_ts)} -> {iso_utc(self.end_ts)}"
        if mark is not None and len(mark) and self.mark_covered == 0:
            span = f"{iso_utc(int(mark.open_time[0]))} -> {iso_utc(int(mark.close_time[-1]))}"
            raise FeedError(f"the mark file covers none of the candles (marks {span}; {candles})")
        if (
            funding is not None
            and len(funding)
            and self.funding_count
            and not self.funding_from_file
        ):
            span = f"{iso_utc(int(funding.ts[0]))} -> {iso_utc(int(funding.ts[-1]))}"
            raise FeedError(
                f"the funding file has none of the {self.funding_count} funding times of the"
                f" candles (funding {span}; {candles})"
            )

    def _refuse_foreign_marks(self) -> None:
        """A mark file whose marks sit far from most of the candles' closes prices another
        market (another symbol's file, or files given in another order than the
        symbols): its marks would value positions, liquidate and trigger stops at
        prices this market never had. A mark strays from the last price by a basis of a
        fraction of a percent; more than half of them 10% away is not this market."""
        if self._marks is None or not self.mark_covered:
            return
        mark, close = self._marks[0], self.candles.close
        far = np.abs(mark - close) > FOREIGN_MARK * close  # NaN (no mark): False
        count = int(np.count_nonzero(far))
        if 2 * count <= self.mark_covered:
            return
        i = int(np.argmax(far))
        raise FeedError(
            f"{self.symbol}: the mark file does not price these candles: {count} of"
            f" {self.mark_covered} marks are more than {FOREIGN_MARK:.0%} from the candle's"
            f" close (mark {float(mark[i]):.6g}, close {float(close[i]):.6g} at"
            f" {iso_utc(int(self._close_time[i]))}); another symbol's file?"
        )

    # -- what the run covers ----------------------------------------------------------

    def strategy_bar_ms(self, timeframe: str) -> int | None:
        """The bar size the strategy sees for `timeframe` (strategy.timeframe): the
        timeframe when it is longer than the candles, which are then aggregated
        (feeds.bars.CandleAggregator); None when it is not longer (the strategy sees the
        candles as they are). FeedError when it is longer but not a multiple."""
        try:
            timeframe_ms = parse_duration(timeframe)
        except ValueError as exc:
            raise FeedError(f"strategy.timeframe {timeframe!r}: {exc}") from exc
        if timeframe_ms <= self.interval_ms:
            return None
        if timeframe_ms % self.interval_ms:
            raise FeedError(
                f"strategy.timeframe {timeframe} is not a multiple of the data's"
                f" {format_duration(self.interval_ms)} candles"
            )
        return timeframe_ms

    @property
    def total(self) -> int:
        return len(self.candles)

    @property
    def start_ts(self) -> int:
        """Open time of the first candle (the simulated clock's start)."""
        return int(self.candles.open_time[0])

    @property
    def end_ts(self) -> int:
        """Close time of the last candle (the last event's time)."""
        return int(self._close_time[-1])

    @property
    def funding_count(self) -> int:
        return int(self._fund_ts.shape[0])

    # -- Feed protocol ----------------------------------------------------------------

    async def start(self) -> None:
        self._stopped = False

    async def stop(self) -> None:
        self._stopped = True

    def progress(self) -> tuple[int, int | None]:
        return self._done, self.total

    async def batches(self) -> AsyncIterator[Sequence[MarketEvent]]:
        total = self.total
        fund_pos = self._fund_pos
        k = 0  # next funding event
        n_fund = int(fund_pos.shape[0])
        for a in range(self._done, total, self.batch_size):
            if self._stopped:
                return
            b = min(a + self.batch_size, total)
            inserts: list[tuple[int, MarketEvent]] = []
            while k < n_fund and fund_pos[k] <= b:
                settlement = FundingRate(
                    int(self._fund_ts[k]),
                    self.symbol,
                    float(self._fund_rate[k]),
                    float(self._fund_mark[k]),
                )
                inserts.append((int(fund_pos[k]) - a, settlement))
                k += 1
            self._done = b
            yield self._columns(a, b, inserts)

    # -- internals --------------------------------------------------------------------

    def _columns(self, a: int, b: int, inserts: list[tuple[int, MarketEvent]]) -> CandleColumns:
        c = self.candles
        columns = (c.open_time[a:b], c.open[a:b], c.high[a:b], c.low[a:b], c.close[a:b],
                   c.volume[a:b])  # fmt: skip
        marks = None if self._marks is None else tuple(x[a:b] for x in self._marks)
        return CandleColumns(self.symbol, self._close_time[a:b], columns, marks, inserts)  # type: ignore[arg-type]

    def _funding_schedule(
        self, funding: FundingArrays | None
    ) -> tuple[IntArray, FloatArray, FloatArray, IntArray, int]:
        """Settlement times inside the candle range, their rates, marks and the index
        of the candle each one follows (+1). The range starts after the first candle's
        open: a settlement inside the first candle is one (it comes before that candle,
        which the orchestrator walks up to it: orchestrator.long_candles)."""
        step = self.funding_interval_ms
        first, last = int(self.candles.open_time[0]), int(self._close_time[-1])
        start = first // step * step + step
        times = np.arange(start, last + 1, step, dtype=np.int64)
        rates = np.full(times.shape[0], self.default_funding_rate, dtype=np.float64)
        from_file = 0
        if funding is not None and len(funding) and times.shape[0]:
            idx = np.searchsorted(funding.ts, times)
            clipped = np.minimum(idx, len(funding) - 1)
            hit = (idx < len(funding)) & (funding.ts[clipped] == times)
            rates[hit] = funding.rate[clipped[hit]]
            from_file = int(hit.sum())
        after = np.searchsorted(self._close_time, times, side="right").astype(np.int64)
        close = self.candles.close
        price = (
            close
            if self._marks is None
            else np.where(np.isnan(self._marks[0]), close, self._marks[0])
        )
        # inside the first candle (none closed yet): its open, the one price known then
        price = np.concatenate((self.candles.open[:1], price))
        marks = price[after] if times.shape[0] else np.empty(0, dtype=np.float64)
        return times, rates, np.ascontiguousarray(marks, dtype=np.float64), after, from_file


def _align_marks(
    candles: CandleArrays, mark: MarkArrays | None
) -> tuple[FloatArray, FloatArray, FloatArray] | None:
    """Per-candle mark close / high / low (NaN = unknown), without lookahead."""
    if mark is None or len(mark) == 0:
        return None
    mark_close_time = mark.close_time
    close_time = candles.close_time
    last = np.searchsorted(mark_close_time, close_time, side="right") - 1
    # only mark candles that opened inside the candle: a longer one (1h marks on 5m
    # candles) closes inside the last candle of its hour, but its extremes happened at
    # an unknown time of the hour, not inside that candle
    first = np.searchsorted(mark.open_time, candles.open_time, side="left")
    safe_last = np.maximum(last, 0)
    fresh = (last >= 0) & (close_time - mark_close_time[safe_last] < mark.interval_ms)
    out_mark = np.where(fresh, mark.close[safe_last], np.nan)
    out_high = np.full(close_time.shape[0], np.nan)
    out_low = np.full(close_time.shape[0], np.nan)
    covered = last >= first  # some mark candle lies inside [open_time, close_time]
    if covered.any():
        # Covered ranges [first, last] are disjoint and in order, but need not touch
        # (a mark candle across two candles belongs to neither): reduceat over the
        # ranges' starts and ends, keeping the even (inside) segments.
        bounds = np.empty(2 * int(covered.sum()), dtype=np.int64)
        bounds[0::2], bounds[1::2] = first[covered], last[covered] + 1
        high, low = np.append(mark.high, np.nan), np.append(mark.low, np.nan)
        out_high[covered] = np.maximum.reduceat(high, bounds)[0::2]
        out_low[covered] = np.minimum.reduceat(low, bounds)[0::2]
    return out_mark, out_high, out_low
