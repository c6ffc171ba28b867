"""Historical candle, funding and mark files -> validated numpy arrays.

Why numpy and pyarrow rather than rows of objects: a backtest over half a million
candles must load in a fraction of a second and in bounded memory. pyarrow parses
CSV and Feather in C, and six float64/int64 column arrays cost 48 bytes a row
(500k rows: 24 MB). The feed turns these arrays into domain events batch by
batch, so the whole file is never held as Python objects.

Reading (formats, time units and range) is feeds.readers; this module validates
what was read, with the row checks of feeds.row_checks.

Every timestamp is the candle's OPEN time, in integer milliseconds since the epoch
(UTC). Prices stay float64: these are market observations that the venue
simulation and strategies read as floats; exactness matters only in the ledger,
which converts at its own boundary.

Validation is strict by default, because a silently repaired file makes a
backtest lie: the first bad row (1-based data row number, its timestamp and the
problem) is reported as one line in a FeedError. `fill_gaps=True` is the one
documented repair: exact duplicate rows are dropped, and each missing interval
gets a flat candle (open = high = low = close = previous close, volume 0).
Unsorted rows, conflicting duplicates, NaN, infinite, non-positive or implausibly
large (MAX_PRICE, MAX_VOLUME) values, inconsistent high/low and steps that are not a
multiple of the interval are still rejected. The interval is the most common step
between consecutive timestamps.

Funding files use the same formats with the rate in `open` (freqtrade style).
Exchanges stamp settlements a few milliseconds late, so their timestamps are
floored to the funding interval before anything else. Mark files are OHLC
candles of the mark price; their volume column is optional and may be NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from perps_bot.domain import format_duration
from perps_bot.feeds.base import FeedError
from perps_bot.feeds.readers import (
    OHLCV_COLUMNS,
    PRICE_COLUMNS,
    FloatArray,
    IntArray,
    RawRows,
    read_rows,
)
from perps_bot.feeds.row_checks import (
    Problem,
    describe_const,
    describe_value,
    detect_interval,
    off_grid,
    raise_first,
    refuse_unsorted,
    time_problems,
)

__all__ = [
    "CandleArrays",
    "FloatArray",
    "FundingArrays",
    "IntArray",
    "MarkArrays",
    "detect_interval",
    "funding_problems",
    "load_candles",
    "load_funding",
    "load_marks",
    "value_problems",
]

# fill_gaps refuses to grow a file beyond this factor (a corrupt timestamp would
# otherwise ask for millions of flat candles).
MAX_FILL_FACTOR = 10
# Larger values are refused as implausible: no traded price comes near them, and
# float arithmetic on them (notionals, sums of volume) would overflow to infinity.
MAX_PRICE = 1e15
MAX_VOLUME = 1e18


@dataclass(frozen=True, slots=True)
class CandleArrays:
    """Validated OHLCV candles as column arrays; `open_time` is strictly increasing
    in steps of exactly `interval_ms`."""

    open_time: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    interval_ms: int
    inserted: int = 0  # flat candles added by fill_gaps
    dropped: int = 0  # exact duplicate rows removed by fill_gaps

    def __len__(self) -> int:
        return int(self.open_time.shape[0])

    @property
    def close_time(self) -> IntArray:
        """When each candle closes (= when a feed emits it)."""
        return self.open_time + self.interval_ms


@dataclass(frozen=True, slots=True)
class MarkArrays(CandleArrays):
    """Mark-price candles (volume may be NaN; it is never used)."""


@dataclass(frozen=True, slots=True)
class FundingArrays:
    """Funding settlements: `ts` floored to `interval_ms`, strictly increasing."""

    ts: IntArray
    rate: FloatArray
    interval_ms: int
    missing: int = 0  # settlement times inside the file's range absent from it (fill_gaps)
    dropped: int = 0  # exact duplicates removed by fill_gaps

    def __len__(self) -> int:
        return int(self.ts.shape[0])


_C = TypeVar("_C", bound=CandleArrays)


# -- public loaders -----------------------------------------------------------------


def load_candles(path: str | Path, *, fill_gaps: bool = False) -> CandleArrays:
    """Read and validate an OHLCV candle file (see the module docstring for formats)."""
    raw = read_rows(path, required=OHLCV_COLUMNS)
    return _validate_candles(raw, fill_gaps=fill_gaps, check_volume=True, cls=CandleArrays)


def load_marks(path: str | Path, *, fill_gaps: bool = False) -> MarkArrays:
    """Read and validate a mark-price candle file (OHLC; volume ignored)."""
    raw = read_rows(path, required=PRICE_COLUMNS)
    return _validate_candles(raw, fill_gaps=fill_gaps, check_volume=False, cls=MarkArrays)


def load_funding(
    path: str | Path, *, interval_ms: int = 8 * 3_600_000, fill_gaps: bool = False
) -> FundingArrays:
    """Read a funding-rate file (rate in `open`), floor its times to `interval_ms`
    and validate. With `fill_gaps`, missing settlements are allowed (counted in
    `missing`; the feed uses the default rate there) and exact duplicates dropped."""
    if interval_ms <= 0:
        raise FeedError(f"funding interval must be positive, got {interval_ms} ms")
    raw = read_rows(path, required=("open",))
    ts = (raw.ts // interval_ms) * interval_ms
    rate = raw.columns["open"]
    rows = np.arange(1, ts.shape[0] + 1, dtype=np.int64)
    _refuse_off_grid(raw.name, raw.ts, ts, rows, interval_ms)
    dropped = 0
    if fill_gaps and ts.shape[0] > 1:
        dup = np.zeros(ts.shape[0], dtype=bool)
        dup[1:] = (ts[1:] == ts[:-1]) & (rate[1:] == rate[:-1])
        dropped = int(dup.sum())
        if dropped:
            keep = ~dup
            ts, rate, rows, raw_ts = ts[keep], rate[keep], rows[keep], raw.ts[keep]
        else:
            raw_ts = raw.ts
    else:
        raw_ts = raw.ts
    problems = funding_problems(rate)
    if ts.shape[0] > 1:
        problems += time_problems(
            raw.name, ts, rows, interval_ms, fill_gaps=fill_gaps, what="funding times", shown=raw_ts
        )
    raise_first(raw.name, raw_ts, rows, problems)
    missing = 0
    if ts.shape[0] > 1:
        missing = int(((ts[-1] - ts[0]) // interval_ms + 1) - ts.shape[0])
    return FundingArrays(
        ts=np.ascontiguousarray(ts),
        rate=np.ascontiguousarray(rate),
        interval_ms=interval_ms,
        missing=missing,
        dropped=dropped,
    )


#: how late after its funding time a settlement may be stamped (exchanges stamp them a
#: few milliseconds late: 08:00:00.017); later, it is another time's
FUNDING_LATE_MS = 60_000


def _refuse_off_grid(
    name: str, raw_ts: IntArray, ts: IntArray, rows: IntArray, interval_ms: int
) -> None:
    """A funding time hours past its interval's grid is not a late stamp: a file of
    another interval (4h read as 8h) or schedule (04:00, 12:00, 20:00). Floored, it was
    charged hours before it happened, or dropped as a duplicate with --fill-gaps."""
    late = raw_ts - ts

    def message(i: int) -> str:
        return (
            f"{format_duration(int(late[i]))} past the {format_duration(interval_ms)} funding"
            f" grid: not a funding time of account.funding_interval"
            f" {format_duration(interval_ms)} (a settlement may be stamped up to"
            f" {format_duration(FUNDING_LATE_MS)} late)"
        )

    raise_first(name, raw_ts, rows, [(late > FUNDING_LATE_MS, message)])


# -- validation ---------------------------------------------------------------------


def _validate_candles(raw: RawRows, *, fill_gaps: bool, check_volume: bool, cls: type[_C]) -> _C:
    ts = raw.ts
    cols = [raw.columns[k] for k in PRICE_COLUMNS]
    cols.append(raw.columns.get("volume", np.full(ts.shape[0], np.nan)))
    rows = np.arange(1, ts.shape[0] + 1, dtype=np.int64)
    dropped = 0
    if fill_gaps and ts.shape[0] > 1:
        same = ts[1:] == ts[:-1]
        for col in cols if check_volume else cols[:4]:
            same &= col[1:] == col[:-1]
        keep = ~np.concatenate(([False], same))
        dropped = int(ts.shape[0] - keep.sum())
        if dropped:
            ts, rows, cols = ts[keep], rows[keep], [col[keep] for col in cols]
    o, h, lo, c, v = cols
    refuse_unsorted(raw.name, ts, rows)
    interval = detect_interval(raw.name, ts)
    problems = time_problems(raw.name, ts, rows, interval, fill_gaps=fill_gaps, what="candles")
    problems += off_grid(ts, interval)  # marks too: shifted marks price the wrong instants
    problems += value_problems(o, h, lo, c, v if check_volume else None)
    raise_first(raw.name, ts, rows, problems)
    inserted = 0
    if fill_gaps:
        total = int((ts[-1] - ts[0]) // interval) + 1
        inserted = total - ts.shape[0]
        if inserted:
            if total > MAX_FILL_FACTOR * ts.shape[0] + 1_000:
                raise FeedError(
                    f"{raw.name}: refusing to fill {inserted} missing"
                    f" {format_duration(interval)} candles"
                    f" (more than {MAX_FILL_FACTOR}x the {ts.shape[0]} rows in the file)"
                )
            ts, o, h, lo, c, v = _fill(ts, o, h, lo, c, v, interval, total)
    return cls(
        open_time=np.ascontiguousarray(ts, dtype=np.int64),
        open=np.ascontiguousarray(o),
        high=np.ascontiguousarray(h),
        low=np.ascontiguousarray(lo),
        close=np.ascontiguousarray(c),
        volume=np.ascontiguousarray(v),
        interval_ms=interval,
        inserted=inserted,
        dropped=dropped,
    )


def value_problems(
    o: FloatArray, h: FloatArray, lo: FloatArray, c: FloatArray, v: FloatArray | None
) -> list[Problem]:
    """Price and volume checks, in the order their messages take precedence: NaN,
    infinite, non-positive, implausibly large, inconsistent high/low, negative volume.
    `v` is None for mark files (their volume is never used)."""

    def prices(i: int) -> str:
        o_, h_, l_, c_ = (float(a[i]) for a in (o, h, lo, c))
        return f"open={o_!r} high={h_!r} low={l_!r} close={c_!r}"

    named = list(zip(PRICE_COLUMNS, (o, h, lo, c), strict=True))
    if v is not None:
        named.append(("volume", v))
    problems: list[Problem] = [(np.isnan(a), describe_const(f"{k} is NaN")) for k, a in named]
    problems += [(np.isinf(a), describe_value(f"infinite {k}", a)) for k, a in named]
    problems += [(a <= 0, describe_value(f"non-positive {k}", a)) for k, a in named[:4]]
    problems += [(a > MAX_PRICE, _too_large(k, a, MAX_PRICE)) for k, a in named[:4]]
    problems.append((h < np.maximum(o, c), lambda i: f"high below max(open, close): {prices(i)}"))
    problems.append((lo > np.minimum(o, c), lambda i: f"low above min(open, close): {prices(i)}"))
    if v is not None:
        problems.append((v < 0, describe_value("negative volume", v)))
        problems.append((v > MAX_VOLUME, _too_large("volume", v, MAX_VOLUME)))
    return problems


def funding_problems(rate: FloatArray) -> list[Problem]:
    """Rate checks of a funding file (and of a downloaded page: feeds.download)."""
    return [
        (np.isnan(rate), lambda i: "funding rate is NaN"),
        (np.abs(rate) >= 1.0, lambda i: f"implausible funding rate {float(rate[i])!r}"),
    ]


def _too_large(key: str, values: FloatArray, limit: float) -> Callable[[int], str]:
    return lambda i: f"implausible {key} {float(values[i])!r} (above {limit:g})"


def _fill(
    ts: IntArray,
    o: FloatArray,
    h: FloatArray,
    lo: FloatArray,
    c: FloatArray,
    v: FloatArray,
    interval: int,
    total: int,
) -> tuple[IntArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Regular grid from first to last open time; missing slots become flat candles
    at the previous close with zero volume."""
    grid = ts[0] + np.arange(total, dtype=np.int64) * interval
    slot = (ts - ts[0]) // interval
    source = np.full(total, -1, dtype=np.int64)
    source[slot] = np.arange(ts.shape[0], dtype=np.int64)
    present = source >= 0
    last = np.maximum.accumulate(source)  # index of the latest real candle at each slot
    prev_close = c[last]
    out_o = np.where(present, o[last], prev_close)
    out_h = np.where(present, h[last], prev_close)
    out_l = np.where(present, lo[last], prev_close)
    out_c = prev_close  # real slots: their own close; filled slots: the previous close
    out_v = np.where(present, v[last], 0.0)
    return grid, out_o, out_h, out_l, out_c, out_v
