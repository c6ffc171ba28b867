"""Historical candle, funding and mark files -> validated numpy arrays.

Why numpy and pyarrow rather than rows of objects: a backtest over half a million
candles must load in a fraction of a second and in bounded memory. pyarrow parses
CSV and Feather in C, and six float64/int64 column arrays cost 48 bytes a row
(500k rows: 24 MB). The feed turns these arrays into domain events batch by
batch, so the whole file is never held as Python objects.

Formats, picked by suffix (anything else is a one-line error):
- `.csv` / `.csv.gz`: header required, columns `timestamp,open,high,low,close,volume`
  (the time column may also be called `date`, `time`, `open_time` or `ts`); the
  timestamp is ISO-8601 (a naive one is read as UTC) or epoch milliseconds.
- `.feather` / `.arrow` / `.ftr`: freqtrade's layout, `date` as `timestamp[*, tz]`
  or integer epoch milliseconds, then the OHLCV columns.
- `.json.gz` / `.json`: an array of `[ms, open, high, low, close, volume]` rows.

Every timestamp is the candle's OPEN time, in integer milliseconds since the epoch
(UTC). Prices stay float64: these are market observations that the venue
simulation and strategies read as floats; exactness matters only in the ledger,
which converts at its own boundary.

Validation is strict by default, because a silently repaired file makes a
backtest lie: the first bad row (1-based data row number, its timestamp and the
problem) is reported as one line in a FeedError. `fill_gaps=True` is the one
documented repair: exact duplicate rows are dropped, and each missing interval
gets a flat candle (open = high = low = close = previous close, volume 0).
Unsorted rows, conflicting duplicates, NaN or non-positive prices, inconsistent
high/low and steps that are not a multiple of the interval are still rejected.
The interval is the most common step between consecutive timestamps.

Funding files use the same formats with the rate in `open` (freqtrade style).
Exchanges stamp settlements a few milliseconds late, so their timestamps are
floored to the funding interval before anything else. Mark files are OHLC
candles of the mark price; their volume column is optional and may be NaN.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.feather as pa_feather

from perps_bot.domain.timeutil import format_duration, iso_utc
from perps_bot.feeds.base import FeedError

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

PRICE_COLUMNS = ("open", "high", "low", "close")
OHLCV_COLUMNS = (*PRICE_COLUMNS, "volume")
TIME_COLUMNS = ("timestamp", "date", "time", "open_time", "ts")
SUFFIXES = (".csv", ".csv.gz", ".feather", ".arrow", ".ftr", ".json", ".json.gz")
# fill_gaps refuses to grow a file beyond this factor (a corrupt timestamp would
# otherwise ask for millions of flat candles).
MAX_FILL_FACTOR = 10


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
# A row mask and how to describe the problem at a flagged row index.
Problem = tuple[npt.NDArray[np.bool_], Callable[[int], str]]


@dataclass(slots=True)
class _Raw:
    """A file's rows as read, before validation: time in ms plus named float columns."""

    name: str
    ts: IntArray
    columns: dict[str, FloatArray]


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
    problems: list[Problem] = [
        (np.isnan(rate), lambda i: "funding rate is NaN"),
        (np.abs(rate) >= 1.0, lambda i: f"implausible funding rate {float(rate[i])!r}"),
    ]
    if ts.shape[0] > 1:
        problems += _time_problems(
            raw.name, ts, rows, interval_ms, fill_gaps=fill_gaps, what="funding times", shown=raw_ts
        )
    _raise_first(raw.name, raw_ts, rows, problems)
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


# -- reading ------------------------------------------------------------------------


def detect_format(path: Path) -> str:
    """'csv', 'feather' or 'json' from the file suffix; FeedError for anything else."""
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith((".feather", ".arrow", ".ftr")):
        return "feather"
    if name.endswith((".json", ".json.gz")):
        return "json"
    raise FeedError(
        f"{path.name}: unknown data format (suffix must be one of {', '.join(SUFFIXES)})"
    )


def read_rows(path: str | Path, *, required: tuple[str, ...]) -> _Raw:
    """Read a file into time + float columns without validating the values."""
    file = Path(path)
    fmt = detect_format(file)
    if not file.is_file():
        raise FeedError(f"{file}: no such data file")
    raw = _read_json(file) if fmt == "json" else _read_table(file, fmt, required)
    if raw.ts.shape[0] == 0:
        raise FeedError(f"{file.name}: no data rows")
    return raw


def _read_json(path: Path) -> _Raw:
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                blob = fh.read()
        else:
            blob = path.read_bytes()
    except (OSError, EOFError) as exc:
        raise FeedError(f"{path.name}: cannot read JSON ({_one_line(exc)})") from exc
    try:
        rows = orjson.loads(blob)
    except orjson.JSONDecodeError:
        try:  # the stdlib also accepts the NaN / Infinity literals some writers emit
            rows = json.loads(blob)
        except ValueError as exc:
            raise FeedError(f"{path.name}: cannot read JSON ({_one_line(exc)})") from exc
    if not isinstance(rows, list):
        raise FeedError(f"{path.name}: expected a JSON array of [ms, o, h, l, c, v] rows")
    try:
        data = np.array(rows, dtype=np.float64)
    except (ValueError, TypeError):
        data = np.empty((0, 6))
        _raise_bad_json_row(path.name, rows)
    if data.shape[0] == 0:
        raise FeedError(f"{path.name}: no data rows")
    if data.ndim != 2 or data.shape[1] != 6:
        _raise_bad_json_row(path.name, rows)
    ts = _float_ms_to_int(path.name, data[:, 0])
    columns = {name: np.ascontiguousarray(data[:, i + 1]) for i, name in enumerate(OHLCV_COLUMNS)}
    return _Raw(path.name, ts, columns)


def _raise_bad_json_row(name: str, rows: list[Any]) -> None:
    for i, row in enumerate(rows, start=1):
        ok = isinstance(row, list) and len(row) == 6
        if ok:
            try:
                np.array(row, dtype=np.float64)
            except (ValueError, TypeError):
                ok = False
        if not ok:
            raise FeedError(f"{name}: row {i}: expected [ms, open, high, low, close, volume]")
    raise FeedError(f"{name}: expected rows of [ms, open, high, low, close, volume]")


def _read_table(path: Path, fmt: str, required: tuple[str, ...]) -> _Raw:
    try:
        table = _read_csv(path) if fmt == "csv" else pa_feather.read_table(path, memory_map=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, ValueError) as exc:
        raise FeedError(f"{path.name}: cannot read {fmt.upper()} ({_one_line(exc)})") from exc
    lower = {name.lower().strip(): name for name in table.column_names}
    time_name = next((lower[c] for c in TIME_COLUMNS if c in lower), None)
    if time_name is None:
        raise FeedError(
            f"{path.name}: no time column (need a header with one of {', '.join(TIME_COLUMNS)};"
            f" found {', '.join(table.column_names) or 'nothing'})"
        )
    missing = [c for c in required if c not in lower]
    if missing:
        raise FeedError(
            f"{path.name}: missing column {missing[0]} (header must be"
            f" timestamp,{','.join(OHLCV_COLUMNS)}; found {', '.join(table.column_names)})"
        )
    ts = _time_column_ms(path.name, table.column(time_name))
    columns: dict[str, FloatArray] = {}
    for name in OHLCV_COLUMNS:
        if name not in lower:
            continue
        col = table.column(lower[name])
        try:
            col = pc.cast(col, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise FeedError(
                f"{path.name}: column {name} is not numeric ({_one_line(exc)})"
            ) from exc
        columns[name] = np.ascontiguousarray(col.to_numpy(zero_copy_only=False), np.float64)
    return _Raw(path.name, ts, columns)


def _read_csv(path: Path) -> pa.Table:
    """Stream the CSV in blocks: about half the peak memory of one whole-file read.

    Arrow's conversion errors do not say which row failed; on one, the file is
    read again as text to name the first cell that is not a number or a time."""
    convert = pa_csv.ConvertOptions(
        column_types={c: pa.float64() for c in OHLCV_COLUMNS}, strings_can_be_null=True
    )
    try:
        reader = pa_csv.open_csv(path, convert_options=convert)
        return pa.Table.from_batches(list(reader), schema=reader.schema)
    except pa.ArrowInvalid as exc:
        if "conversion error" not in str(exc):
            raise
    _raise_bad_csv_cell(path)
    raise AssertionError("unreachable")  # pragma: no cover


def _raise_bad_csv_cell(path: Path) -> None:
    """Slow path, only after a failed read: find and name the first unconvertible cell.

    A whole-file read infers each column's type from all its cells, so only the
    columns that came out as text can hold the bad cell."""
    table = pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(strings_can_be_null=True))
    lower = {name.lower().strip(): name for name in table.column_names}
    first: tuple[int, str] | None = None
    for key in (*TIME_COLUMNS, *OHLCV_COLUMNS):
        if key not in lower or not pa.types.is_string(table.column(lower[key]).type):
            continue
        is_time = key in TIME_COLUMNS
        for i, cell in enumerate(table.column(lower[key]).to_pylist()):
            if first is not None and i >= first[0]:
                break
            if is_time:
                if cell is None or _text_time_ms(cell) is None:
                    first = (i, f"timestamp {cell!r} is neither ISO-8601 nor epoch ms")
                    break
            elif cell is not None and not _is_number(cell):
                first = (i, f"{key} {cell!r} is not a number")
                break
        if is_time:
            lower = {k: v for k, v in lower.items() if k not in TIME_COLUMNS}  # one time column
    if first is None:
        raise FeedError(f"{path.name}: cannot read CSV (a cell is neither a number nor a time)")
    raise FeedError(f"{path.name}: row {first[0] + 1}: {first[1]}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text.strip() == ""
    return True


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TS_UNIT_DIVISOR = {"s": None, "ms": 1, "us": 1_000, "ns": 1_000_000}


def _time_column_ms(name: str, col: pa.ChunkedArray) -> IntArray:
    """Any supported time column -> int64 epoch milliseconds (nulls rejected)."""
    if col.null_count:
        first = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise FeedError(f"{name}: row {first + 1}: missing or unreadable timestamp")
    kind = col.type
    if pa.types.is_timestamp(kind):
        values = _i64(pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False))
        divisor = _TS_UNIT_DIVISOR[kind.unit]
        if divisor is None:
            return values * 1_000
        return values // divisor if divisor > 1 else values
    if pa.types.is_date(kind):
        days = pc.cast(pc.cast(col, pa.date32()), pa.int32()).to_numpy(zero_copy_only=False)
        return _i64(days) * 86_400_000
    if pa.types.is_integer(kind):
        return _i64(col.to_numpy(zero_copy_only=False))
    if pa.types.is_floating(kind):
        return _float_ms_to_int(name, col.to_numpy(zero_copy_only=False).astype(np.float64))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _parse_text_times(name, col.to_pylist())
    raise FeedError(f"{name}: unsupported time column type {kind}")


def _i64(values: Any) -> IntArray:
    return np.asarray(values, dtype=np.int64)


def _float_ms_to_int(name: str, values: FloatArray) -> IntArray:
    bad = ~np.isfinite(values) | (values != np.floor(values))
    if bad.any():
        row = int(np.argmax(bad)) + 1
        raise FeedError(f"{name}: row {row}: timestamp {values[row - 1]!r} is not integer ms")
    return values.astype(np.int64)


def _parse_text_times(name: str, texts: list[Any]) -> IntArray:
    """Slow path for a time column pyarrow could not type (mixed ISO forms or ms)."""
    out = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        value = None if text is None else _text_time_ms(str(text))
        if value is None:
            raise FeedError(
                f"{name}: row {i + 1}: timestamp {text!r} is neither ISO-8601 nor epoch ms"
            )
        out[i] = value
    return out


def _text_time_ms(text: str) -> int | None:
    """Epoch ms or ISO-8601 (naive = UTC) text -> epoch ms; None if it is neither."""
    value = text.strip()
    if value.lstrip("-").isdigit():
        return int(value)
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // timedelta(milliseconds=1)


# -- validation ---------------------------------------------------------------------


def detect_interval(name: str, ts: IntArray) -> int:
    """The most common positive step between consecutive timestamps (ms)."""
    if ts.shape[0] < 2:
        raise FeedError(f"{name}: need at least 2 rows to detect the candle interval")
    diffs = np.diff(ts)
    first = int(diffs[0])
    if first > 0 and np.count_nonzero(diffs == first) * 2 > diffs.shape[0]:
        return first  # the common case: a regular file, decided without sorting
    positive = diffs[diffs > 0]
    if positive.shape[0] == 0:
        raise FeedError(f"{name}: need at least 2 distinct timestamps to detect the interval")
    values, counts = np.unique(positive, return_counts=True)
    return int(values[int(np.argmax(counts))])


def _validate_candles(raw: _Raw, *, fill_gaps: bool, check_volume: bool, cls: type[_C]) -> _C:
    ts = raw.ts
    o, h, lo, c = (raw.columns[k] for k in PRICE_COLUMNS)
    v: FloatArray = raw.columns.get("volume", np.full(ts.shape[0], np.nan))
    rows = np.arange(1, ts.shape[0] + 1, dtype=np.int64)
    dropped = 0
    if fill_gaps and ts.shape[0] > 1:
        same = (ts[1:] == ts[:-1]) & (o[1:] == o[:-1]) & (h[1:] == h[:-1])
        same &= (lo[1:] == lo[:-1]) & (c[1:] == c[:-1])
        if check_volume:
            same &= v[1:] == v[:-1]
        dup = np.concatenate(([False], same))
        dropped = int(dup.sum())
        if dropped:
            keep = ~dup
            ts, rows = ts[keep], rows[keep]
            o, h, lo, c, v = o[keep], h[keep], lo[keep], c[keep], v[keep]
    interval = detect_interval(raw.name, ts)
    problems = _time_problems(raw.name, ts, rows, interval, fill_gaps=fill_gaps, what="candles")

    def prices(i: int) -> str:
        o_, h_, l_, c_ = (float(a[i]) for a in (o, h, lo, c))
        return f"open={o_!r} high={h_!r} low={l_!r} close={c_!r}"

    for key, arr in zip(PRICE_COLUMNS, (o, h, lo, c), strict=True):
        problems.append((np.isnan(arr), _describe_const(f"{key} is NaN")))
    if check_volume:
        problems.append((np.isnan(v), _describe_const("volume is NaN")))
    for key, arr in zip(PRICE_COLUMNS, (o, h, lo, c), strict=True):
        problems.append((arr <= 0, _describe_value(f"non-positive {key}", arr)))
    problems.append((h < np.maximum(o, c), lambda i: f"high below max(open, close): {prices(i)}"))
    problems.append((lo > np.minimum(o, c), lambda i: f"low above min(open, close): {prices(i)}"))
    if check_volume:
        problems.append((v < 0, _describe_value("negative volume", v)))
    _raise_first(raw.name, ts, rows, problems)
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


def _shifted(diff_mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """A mask over diffs (row i vs i-1) aligned to rows (row 0 never flagged)."""
    return np.concatenate(([False], diff_mask))


def _describe_const(text: str) -> Callable[[int], str]:
    return lambda i: text


def _describe_value(text: str, values: FloatArray) -> Callable[[int], str]:
    return lambda i: f"{text} {float(values[i])!r}"


def _time_problems(
    name: str,
    ts: IntArray,
    rows: IntArray,
    interval: int,
    *,
    fill_gaps: bool,
    what: str,
    shown: IntArray | None = None,
) -> list[Problem]:
    """Duplicate, alignment and gap checks on timestamps that must be strictly regular.

    Rows out of order are raised at once: in an unsorted file every later gap or
    duplicate is a symptom, and a swapped pair would otherwise show up as a 'gap'."""
    diffs = np.diff(ts)
    step = format_duration(interval)

    def previous(i: int) -> str:
        return _safe_iso(int(ts[i - 1]))

    def gap(i: int) -> str:
        missing = int(diffs[i - 1] // interval) - 1
        hint = "" if what != "candles" else "; --fill-gaps inserts flat candles"
        return f"gap: {missing} {what} missing after {previous(i)} (interval {step}{hint})"

    dup_hint = "" if fill_gaps else "; --fill-gaps drops exact duplicates"
    if what != "candles":
        dup_hint = f" after flooring to {step} (check account.funding_interval){dup_hint}"
    unsorted = _shifted(diffs < 0)
    _raise_first(
        name,
        ts,
        rows,
        [(unsorted, lambda i: f"not sorted: earlier than the previous row {previous(i)}")],
    )
    problems: list[Problem] = [
        (_shifted(diffs == 0), lambda i: f"duplicate timestamp{dup_hint}"),
        (
            _shifted((diffs > 0) & (diffs % interval != 0)),
            lambda i: (
                f"step {format_duration(int(diffs[i - 1]))} from {previous(i)}"
                f" is not a multiple of the {step} interval"
            ),
        ),
    ]
    if not fill_gaps:
        problems.append((_shifted(diffs > interval), gap))
    return problems


def _raise_first(name: str, ts: IntArray, rows: IntArray, problems: list[Problem]) -> None:
    """Raise FeedError for the earliest row with any problem (first listed problem wins)."""
    if not problems:
        return
    bad = problems[0][0].copy()
    for mask, _ in problems[1:]:
        bad |= mask
    if not bad.any():
        return
    i = int(np.argmax(bad))
    describe = next(text for mask, text in problems if mask[i])
    raise FeedError(f"{name}: row {int(rows[i])} ({_safe_iso(int(ts[i]))}): {describe(i)}")


def _safe_iso(ts_ms: int) -> str:
    try:
        return iso_utc(ts_ms)
    except (OverflowError, OSError, ValueError):
        return f"{ts_ms} ms"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
