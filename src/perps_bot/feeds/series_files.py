"""Downloaded market data on disk: one Feather file per symbol and series, in the
columns the backtester reads (feeds.loaders): `date` (timestamp[ms, UTC]) and `open,
high, low, close, volume` (funding files carry the rate in `open`, freqtrade style).

Why pages go to a staging folder first: a download of months of 1-minute candles is
thousands of requests, and it can be interrupted anywhere (Ctrl-C, a network outage, a
ban). Each page is written as its own small file under `<file>.parts/` as soon as it
arrives (write to a temp name, then rename: a page is there whole or not at all). The
next run first compacts the parts into the file (sorted, one row per time), so it
goes on from the last candle it has: an interrupted download loses at most the page
in flight, and a finished one leaves a single file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.feather as pa_feather

from perps_bot.domain import PerpsBotError, short, short_path
from perps_bot.feeds.base import FeedError
from perps_bot.storage.lock import FileLock

COLUMNS = ("open", "high", "low", "close", "volume")
SCHEMA = pa.schema(
    [("date", pa.timestamp("ms", tz="UTC")), *((name, pa.float64()) for name in COLUMNS)]
)
Row = Sequence[float]  # [ms, open, high, low, close, volume]


class SeriesFile:
    """One output file and its staging parts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.parts = path.with_name(path.name + ".parts")
        self._next = 0

    def compact(self) -> pa.Table | None:
        """Fold staged pages into the file (atomically); the table, or None if empty."""
        tables = [_read(self.path)] if self.path.exists() else []
        staged = sorted(self.parts.glob("*.feather")) if self.parts.is_dir() else []
        tables += [_read(p) for p in staged]
        table = _sorted_unique(pa.concat_tables(tables)) if tables else None
        if staged:
            _write(table, self.path)
        if self.parts.is_dir():  # folded in, or no page in it (a write that failed, a
            shutil.rmtree(self.parts)  # Ctrl-C while it was removed): never left behind
        return table

    def add_page(self, rows: Sequence[Row]) -> None:
        """Stage one page of rows (a file of its own, renamed into place when whole)."""
        if not rows:
            return
        try:
            self.parts.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _unwritable(self.parts, exc) from None
        while (self.parts / f"{self._next:08d}.feather").exists():
            self._next += 1
        try:
            _write(table_of(rows), self.parts / f"{self._next:08d}.feather")
        except FeedError:
            with contextlib.suppress(OSError):
                self.parts.rmdir()  # when no page is in it
            raise
        self._next += 1


class SeriesLock(FileLock):
    """One download of a file at a time (`<file>.lock`): two `data download` runs into
    the same --out shared its staging names (`<file>.tmp`, the pages), and one
    renamed or removed what the other was writing."""

    def busy(self, holder: str) -> PerpsBotError:
        return FeedError(f"{short_path(self.target)} is being downloaded by another"
                         f" `data download` (pid {holder}): wait for it to end or use"
                         " another --out")  # fmt: skip

    def unlockable(self, exc: OSError) -> PerpsBotError:
        return FeedError(f"cannot write to {short_path(self.target.parent)}"
                         f" ({exc.strerror or exc})")  # fmt: skip


def table_of(rows: Sequence[Row]) -> pa.Table:
    data = np.asarray(rows, dtype=np.float64).reshape(len(rows), 6)
    columns = {"date": pa.array(data[:, 0].astype(np.int64), pa.timestamp("ms", tz="UTC"))}
    for i, name in enumerate(COLUMNS, start=1):
        columns[name] = pa.array(data[:, i], pa.float64())
    return pa.table(columns, schema=SCHEMA)


def dates_ms(table: pa.Table) -> npt.NDArray[np.int64]:
    return np.asarray(table.column("date").cast(pa.int64()).to_numpy(), dtype=np.int64)


def _sorted_unique(table: pa.Table) -> pa.Table:
    """Rows in time order, the last one kept where a time repeats."""
    ts = dates_ms(table)
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    keep = np.append(ts[1:] != ts[:-1], True)
    return table.take(pa.array(order[keep]))


def _read(path: Path) -> pa.Table:
    """A file of ours (or a page), in SCHEMA; FeedError (one line) for anything else:
    a file of that name that is not a download of ours is not overwritten."""
    try:
        table = pa_feather.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise FeedError(f"{short_path(path)}: cannot read ({short(' '.join(str(exc).split()))});"
                        " move it away or download into another --out") from None  # fmt: skip
    if table.schema.names != SCHEMA.names:
        raise FeedError(f"{short_path(path)}: not a file of `data download` (columns"
                        f" {short(', '.join(table.schema.names))}); move it away or download"
                        " into another --out")  # fmt: skip
    try:
        return table.cast(SCHEMA)
    except (pa.ArrowException, ValueError) as exc:
        raise FeedError(
            f"{short_path(path)}: not a file of `data download`"
            f" ({short(' '.join(str(exc).split()))})"
        ) from None


def _write(table: pa.Table, path: Path) -> None:
    """`path` whole or not at all; a write that fails (a full disk) is one line and
    leaves no half-written temp file."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        pa_feather.write_feather(table, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise _unwritable(path, exc) from None


def _unwritable(path: Path, exc: OSError) -> FeedError:
    return FeedError(f"cannot write {short_path(path)} ({exc.strerror or exc});"
                     " the pages saved so far are kept")  # fmt: skip
