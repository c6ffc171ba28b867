"""Reading historical data files into raw rows: epoch-ms times plus float columns.

The first half of loading (feeds.loaders validates what this returns). Why pyarrow
and numpy: see feeds.loaders. Formats, picked by suffix (anything else is a one-line
error):
- `.csv` / `.csv.gz`: header required, columns `timestamp,open,high,low,close,volume`
  (the time column may also be called `date`, `time`, `open_time` or `ts`); the
  timestamp is ISO-8601 (a naive one is read as UTC) or epoch milliseconds.
- `.feather` / `.arrow` / `.ftr`: freqtrade's layout, `date` as `timestamp[*, tz]`
  or integer epoch milliseconds, then the OHLCV columns.
- `.json.gz` / `.json`: an array of `[ms, open, high, low, close, volume]` rows.

Times must lie between 1970-01-01 and 3000-01-01 (domain.timeutil). A file whose
times all lie between 1e8 and 1e11, i.e. in 1970-1973 read as milliseconds but in
1973-5138 read as seconds, is a file of epoch SECONDS: it is refused with a message
saying so, rather than converted: the formats are epoch milliseconds (SPEC 7), and a
file read in the wrong unit would replay a 5-minute series as 5 seconds apart. Times
beyond 3000 (micro- or nanoseconds) are refused too, before any arithmetic on them
can overflow int64.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.feather as pa_feather

from perps_bot.domain import (
    DAY_MS,
    MAX_TIME_MS,
    MIN_TIME_MS,
    iso_utc,
    parse_iso_ms,
    short,
    short_path,
)
from perps_bot.feeds.base import FeedError
from perps_bot.feeds.file_formats import SUFFIXES, format_of
from perps_bot.feeds.prefetch import take as prefetched

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

PRICE_COLUMNS = ("open", "high", "low", "close")
OHLCV_COLUMNS = (*PRICE_COLUMNS, "volume")
TIME_COLUMNS = ("timestamp", "date", "time", "open_time", "ts")
# Beyond this an epoch value is out of range whatever its unit; int64 arithmetic
# on it (seconds * 1000) could overflow.
_INT_LIMIT = 2**62
# A file whose times all lie in [1e8, 1e11) is in epoch seconds (see the docstring).
_SECONDS_FROM = 100_000_000
_SECONDS_BELOW = 100_000_000_000


@dataclass(slots=True)
class RawRows:
    """A file's rows as read, before validation: time in ms plus named float columns."""

    name: str
    ts: IntArray
    columns: dict[str, FloatArray]


def detect_format(path: Path) -> str:
    """'csv', 'feather' or 'json' from the file suffix; FeedError for anything else."""
    fmt = format_of(path.name)
    if fmt is None:
        raise FeedError(
            f"{label(path)}: unknown data format (suffix must be one of {', '.join(SUFFIXES)})"
        )
    return fmt


def read_rows(path: str | Path, *, required: tuple[str, ...]) -> RawRows:
    """Read a file into time + float columns without validating the values."""
    file = Path(path)
    fmt = detect_format(file)
    if not _is_file(file):
        raise FeedError(f"{short_path(file)}: no such data file")
    raw = _read_json(file) if fmt == "json" else _read_table(file, fmt, required)
    # the Arrow table is gone (the columns are numpy copies): hand its memory back now,
    # or the allocator keeps it for the whole run (tens of MB at 500k candles)
    pa.default_memory_pool().release_unused()
    if raw.ts.shape[0] == 0:
        raise FeedError(f"{raw.name}: no data rows")
    check_time_range(raw.name, raw.ts)
    return raw


def label(path: Path) -> str:
    """The file's name as messages show it (cut: a name can be 255 characters)."""
    return short(path.name)


def _is_file(path: Path) -> bool:
    """Path.is_file() raises on a NUL byte or a name too long: no such file either."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def check_time_range(name: str, ts: IntArray) -> None:
    """Every time between 1970-01-01 and 3000-01-01 (epoch ms); a file of epoch SECONDS
    is refused with a message saying so (see the module docstring)."""
    if bool(((ts >= _SECONDS_FROM) & (ts < _SECONDS_BELOW)).all()):
        first = int(ts[0])
        raise FeedError(
            f"{name}: timestamps are epoch seconds (row 1: {first} = {iso_utc(first * 1000)}"
            " as seconds), not milliseconds: multiply them by 1000 or use ISO-8601"
        )
    outside = (ts < MIN_TIME_MS) | (ts >= MAX_TIME_MS)
    if not outside.any():
        return
    row = int(np.argmax(outside))
    raise _out_of_range(name, row, int(ts[row]))


def _out_of_range(name: str, row: int, value: object) -> FeedError:
    return FeedError(
        f"{name}: row {row + 1}: timestamp {short(str(value))} is not between 1970-01-01"
        " and 3000-01-01 (epoch milliseconds expected)"
    )


def _read_json(path: Path) -> RawRows:
    name = label(path)
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                blob = fh.read()
        else:
            blob = path.read_bytes()
    except (OSError, EOFError) as exc:
        raise FeedError(f"{name}: cannot read JSON ({_one_line(exc)})") from exc
    try:
        rows = orjson.loads(blob)
    except orjson.JSONDecodeError:
        try:  # the stdlib also accepts the NaN / Infinity literals some writers emit
            rows = json.loads(blob)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            raise FeedError(f"{name}: cannot read JSON ({_one_line(exc)})") from exc
    if not isinstance(rows, list):
        raise FeedError(f"{name}: expected a JSON array of [ms, o, h, l, c, v] rows")
    if b"true" in blob or b"false" in blob:  # numpy reads true as 1.0: a price of 1
        _refuse_booleans(name, rows)
    try:
        data = np.array(rows, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        data = np.empty((0, 6))
        _raise_bad_json_row(name, rows)
    if data.shape[0] == 0:
        raise FeedError(f"{name}: no data rows")
    if data.ndim != 2 or data.shape[1] != 6:
        _raise_bad_json_row(name, rows)
    ts = _float_ms_to_int(name, data[:, 0])
    columns = {key: np.ascontiguousarray(data[:, i + 1]) for i, key in enumerate(OHLCV_COLUMNS)}
    return RawRows(name, ts, columns)


def _refuse_booleans(name: str, rows: list[Any]) -> None:
    for i, row in enumerate(rows, start=1):
        if isinstance(row, list) and any(isinstance(cell, bool) for cell in row):
            raise FeedError(f"{name}: row {i}: true or false where a number belongs")


def _raise_bad_json_row(name: str, rows: list[Any]) -> None:
    for i, row in enumerate(rows, start=1):
        ok = isinstance(row, list) and len(row) == 6
        if ok:
            try:
                np.array(row, dtype=np.float64)
            except OverflowError:
                raise FeedError(f"{name}: row {i}: a number too large for a float") from None
            except (ValueError, TypeError):
                ok = False
        if not ok:
            raise FeedError(f"{name}: row {i}: expected [ms, open, high, low, close, volume]")
    raise FeedError(f"{name}: expected rows of [ms, open, high, low, close, volume]")


def read_table(path: Path, fmt: str) -> pa.Table:
    """The Arrow table of a CSV or feather file (feeds.prefetch reads it ahead)."""
    if fmt == "csv":
        return _read_csv(path)
    return pa_feather.read_table(path, memory_map=False)


def _read_table(path: Path, fmt: str, required: tuple[str, ...]) -> RawRows:
    name = label(path)
    try:
        table = prefetched(path)
        if table is None:
            table = read_table(path, fmt)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, ValueError) as exc:
        raise FeedError(f"{name}: cannot read {fmt.upper()} ({_one_line(exc)})") from exc
    lower = _named_columns(name, fmt, table)
    time_name = next((lower[c] for c in TIME_COLUMNS if c in lower), None)
    if time_name is None:
        raise FeedError(
            f"{name}: no time column (need a header with one of {', '.join(TIME_COLUMNS)};"
            f" found {_columns(table)})"
        )
    missing = [c for c in required if c not in lower]
    if missing:
        raise FeedError(
            f"{name}: missing column {missing[0]} (header must be"
            f" timestamp,{','.join(required)}; found {_columns(table)})"
        )
    if table.num_rows == 0:  # a header alone: its columns have no type to read
        raise FeedError(f"{name}: no data rows")
    ts = _time_column_ms(name, table.column(time_name))
    columns: dict[str, FloatArray] = {}
    for key in OHLCV_COLUMNS:
        if key not in lower:
            continue
        col = table.column(lower[key])
        try:
            col = _cast(col, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise FeedError(f"{name}: column {key} is not numeric ({_one_line(exc)})") from exc
        columns[key] = np.ascontiguousarray(col.to_numpy(zero_copy_only=False), np.float64)
    return RawRows(name, ts, columns)


def _named_columns(name: str, fmt: str, table: pa.Table) -> dict[str, str]:
    """Column names by their lower-case, stripped form; a column the loaders read that
    appears twice (`close,close`, `Close,close`) is refused: which one is the close?"""
    try:
        keys = [column.lower().strip() for column in table.column_names]
    except UnicodeDecodeError:
        raise FeedError(f"{name}: cannot read {fmt.upper()} (a column name is not UTF-8)") from None
    twice = next((k for k in (*TIME_COLUMNS, *OHLCV_COLUMNS) if keys.count(k) > 1), None)
    if twice is not None:
        raise FeedError(f"{name}: column {twice} appears twice (found {_columns(table)})")
    return dict(zip(keys, table.column_names, strict=True))


def _columns(table: pa.Table) -> str:
    """The header as found, cut (a binary file read as CSV has a header of junk)."""
    return short(", ".join(table.column_names), 80) or "nothing"


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
    lower = _named_columns(label(path), "csv", table)
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
                    first = (i, f"timestamp {short(repr(cell))} is neither ISO-8601 nor epoch ms")
                    break
            elif cell is not None and not _is_number(cell):
                first = (i, f"{key} {short(repr(cell))} is not a number")
                break
        if is_time:
            lower = {k: v for k, v in lower.items() if k not in TIME_COLUMNS}  # one time column
    if first is None:
        raise FeedError(f"{label(path)}: cannot read CSV (a cell is neither a number nor a time)")
    raise FeedError(f"{label(path)}: row {first[0] + 1}: {first[1]}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text.strip() == ""
    return True


_TS_UNIT_DIVISOR = {"s": None, "ms": 1, "us": 1_000, "ns": 1_000_000}


def _time_column_ms(name: str, col: pa.ChunkedArray) -> IntArray:
    """Any supported time column -> int64 epoch milliseconds (nulls rejected)."""
    if col.null_count:
        first = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise FeedError(f"{name}: row {first + 1}: missing or unreadable timestamp")
    kind = col.type
    if pa.types.is_timestamp(kind):
        values = _i64(_cast(col, pa.int64()).to_numpy(zero_copy_only=False))
        divisor = _TS_UNIT_DIVISOR[kind.unit]
        if divisor is None:
            _refuse_beyond(name, values, _INT_LIMIT // 1000)
            return values * 1_000
        return values // divisor if divisor > 1 else values
    if pa.types.is_date(kind):
        days = _cast(_cast(col, pa.date32()), pa.int32()).to_numpy(zero_copy_only=False)
        return _i64(days) * DAY_MS
    if pa.types.is_integer(kind):
        return _i64(col.to_numpy(zero_copy_only=False))
    if pa.types.is_floating(kind):
        return _float_ms_to_int(name, col.to_numpy(zero_copy_only=False).astype(np.float64))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _parse_text_times(name, col.to_pylist())
    raise FeedError(f"{name}: unsupported time column type {kind}")


def _cast(col: pa.ChunkedArray, kind: pa.DataType) -> pa.ChunkedArray:
    """`pyarrow.compute.cast`, skipped when the column has the type already: a CSV's
    price columns are read as float64, and a backtest of one need not import
    pyarrow.compute (a tenth of its start-up: tests/architecture/test_startup_imports.py)."""
    if col.type == kind:
        return col
    import pyarrow.compute as pc  # feather files and timestamp or date columns only

    return pc.cast(col, kind)


def _i64(values: Any) -> IntArray:
    return np.asarray(values, dtype=np.int64)


def _refuse_beyond(name: str, values: npt.NDArray[Any], limit: int) -> None:
    """Refuse epoch values whose conversion to int64 ms could overflow."""
    beyond = (values >= limit) | (values <= -limit)
    if beyond.any():
        row = int(np.argmax(beyond))
        raise _out_of_range(name, row, values[row])


def _float_ms_to_int(name: str, values: FloatArray) -> IntArray:
    bad = ~np.isfinite(values) | (values != np.floor(values))
    if bad.any():
        row = int(np.argmax(bad)) + 1
        raise FeedError(f"{name}: row {row}: timestamp {float(values[row - 1])} is not integer ms")
    _refuse_beyond(name, values, _INT_LIMIT)
    return values.astype(np.int64)


def _parse_text_times(name: str, texts: list[Any]) -> IntArray:
    """Slow path for a time column pyarrow could not type (mixed ISO forms or ms)."""
    out = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        value = None if text is None else _text_time_ms(str(text))
        if value is None:
            raise FeedError(
                f"{name}: row {i + 1}: timestamp {short(repr(text))} is neither ISO-8601"
                " nor epoch ms"
            )
        if not -_INT_LIMIT < value < _INT_LIMIT:
            raise _out_of_range(name, i, value)
        out[i] = value
    return out


def _text_time_ms(text: str) -> int | None:
    """Epoch ms or ISO-8601 (naive = UTC) text -> epoch ms; None if it is neither."""
    value = text.strip()
    digits = value.removeprefix("-")
    if digits.isascii() and digits.isdigit():
        return int(value) if len(digits) <= 30 else _INT_LIMIT  # longer: out of range
    try:
        return parse_iso_ms(value)
    except ValueError:
        return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
