"""The equity curve stored as columnar blocks, not one SQLite row per snapshot.

Why: a run writes an equity snapshot every simulated minute and at every fill, so a
year of 1-minute candles is half a million snapshots. As rows (with the index a
report needs) that was the largest single cost of a backtest: about 1 s to insert
and 0.4 s to read back, 60 MB on disk. Stored as blocks of up to `BLOCK_ROWS`
snapshots, each column one little-endian blob (int64 ms timestamps, float64
amounts), the same curve costs a few milliseconds to write and to read, about
16 MB on disk, and reads straight into the numpy arrays the metrics use.

The values are the floats the ledger reported, bit for bit (no rounding: a report
rebuilt from the blocks is identical to one built from rows). A block is sorted by
time when written; `read_chunks` streams blocks in order and falls back to one sort
of the whole curve only if blocks overlap in time (a live fill stamped by the
exchange before the previous snapshot), so reading stays in bounded memory for every
simulated run.

Snapshots are buffered in `array`s (two C calls per snapshot) between flushes; a
quiet stretch's are kept as their recipe until then (storage.equity_marked).
"""

from __future__ import annotations

import sqlite3
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from perps_bot.storage.connection import StoreError
from perps_bot.storage.equity_marked import MarkedRows

BLOCK_ROWS = 16_384
_TS = np.dtype("<i8")
_F8 = np.dtype("<f8")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS equity_blocks (
    run_id TEXT NOT NULL,
    block INTEGER NOT NULL,           -- 0, 1, 2 ... in write order
    rows INTEGER NOT NULL,
    first_ts INTEGER NOT NULL,
    last_ts INTEGER NOT NULL,
    ts BLOB NOT NULL,                 -- little-endian int64 ms, sorted within the block
    equity BLOB NOT NULL,             -- little-endian float64, one per ts
    cash BLOB NOT NULL,
    unrealized_pnl BLOB NOT NULL,
    PRIMARY KEY (run_id, block)
);
"""

INSERT_SQL = "INSERT INTO equity_blocks VALUES (?,?,?,?,?,?,?,?,?)"


@dataclass(frozen=True)
class EquityChunk:
    """Consecutive equity snapshots in time order, one numpy array per column."""

    ts: IntArray
    equity: FloatArray
    cash: FloatArray
    unrealized_pnl: FloatArray

    def __len__(self) -> int:
        return int(self.ts.shape[0])


class EquityBuffer:
    """Snapshots of one run waiting for the next flush.

    Times in an int64 `array`, the three amounts interleaved in one float64 `array`:
    a snapshot is two C calls (`add_ts`, `add_values`: the arrays' bound `append`
    and `fromlist`) instead of four appends, which matters at one snapshot per candle.
    `fromlist`, not `extend`: `extend` from anything but an array grows the array
    once per item and converts each item twice (about twice the instructions).
    """

    __slots__ = ("add_ts", "add_values", "marked", "run_id", "ts", "values")

    def __init__(self) -> None:
        self.run_id: str | None = None
        self.ts: array[int] = array("q")
        self.values: array[float] = array("d")  # equity, cash, unrealized_pnl per row
        # valid across flushes: the arrays are emptied in place, never replaced
        self.add_ts = self.ts.append
        self.add_values = self.values.fromlist
        #: snapshots kept as their recipe until written (a quiet stretch's: `marked.add`)
        self.marked = MarkedRows(self.ts)

    def __len__(self) -> int:
        return len(self.ts) + self.marked.rows

    def add(self, ts: int, equity: float, cash: float, unrealized_pnl: float) -> None:
        self.add_ts(ts)
        self.add_values([equity, cash, unrealized_pnl])

    def add_many(
        self, ts: IntArray, equity: FloatArray, cash: FloatArray, unrealized_pnl: FloatArray
    ) -> None:
        """Many snapshots at once, in time order (equal-length columns)."""
        self.ts.frombytes(np.ascontiguousarray(ts, dtype=np.int64).tobytes())
        table = np.column_stack((equity, cash, unrealized_pnl)).astype(np.float64)
        self.values.frombytes(table.tobytes())

    def write(self, db: sqlite3.Connection, next_block: int) -> int:
        """Insert the buffered snapshots as blocks (caller holds the transaction);
        return the next free block number and empty the buffer."""
        rows, next_block = self.take_rows(next_block)
        if rows:
            db.executemany(INSERT_SQL, rows)
        return next_block

    def take_rows(self, next_block: int) -> tuple[list[tuple[object, ...]], int]:
        """The buffered snapshots as `INSERT_SQL` rows, blocks numbered from `next_block`,
        and the next free block number; the buffer is emptied."""
        if not len(self) or self.run_id is None:
            return [], next_block
        columns = self._sorted_columns()
        rows: list[tuple[object, ...]] = []
        for start in range(0, columns[0].shape[0], BLOCK_ROWS):
            part = [c[start : start + BLOCK_ROWS] for c in columns]
            block_ts = part[0]
            rows.append(
                (
                    self.run_id,
                    next_block,
                    int(block_ts.shape[0]),
                    int(block_ts[0]),
                    int(block_ts[-1]),
                    *(c.tobytes() for c in part),
                )
            )
            next_block += 1
        self.clear()
        return rows, next_block

    def _sorted_columns(self) -> list[npt.NDArray[np.generic]]:
        """Copies of the columns in time order (no view of the array survives, so it
        can be emptied in place)."""
        ts = np.frombuffer(self.ts, dtype=np.int64)
        table = np.frombuffer(self.values, dtype=np.float64).reshape(-1, 3)
        if self.marked.rows:
            ts, table, added = self.marked.combined(ts, table)
            order = np.lexsort((added, ts))  # by time, then as they were added
        else:
            order = np.argsort(ts, kind="stable")
        columns: list[npt.NDArray[np.generic]] = [ts[order].astype(_TS)]
        columns += [table[order, k].astype(_F8) for k in (0, 1, 2)]
        del ts, table
        return columns

    def clear(self) -> None:
        del self.ts[:]
        del self.values[:]
        self.marked.clear()


def next_block(db: sqlite3.Connection, run_id: str) -> int:
    row = db.execute(
        "SELECT COALESCE(MAX(block), -1) FROM equity_blocks WHERE run_id=?", (run_id,)
    ).fetchone()
    return int(row[0]) + 1


def span(db: sqlite3.Connection, run_id: str) -> tuple[int | None, int | None, int]:
    """(first ts, last ts, number of snapshots) of a run's stored curve."""
    row = db.execute(
        "SELECT MIN(first_ts), MAX(last_ts), COALESCE(SUM(rows), 0) FROM equity_blocks"
        " WHERE run_id=?",
        (run_id,),
    ).fetchone()
    return row[0], row[1], int(row[2])


def last_equity(db: sqlite3.Connection, run_id: str) -> float | None:
    """Equity of the latest snapshot (the last one of the block that ends latest)."""
    row = db.execute(
        "SELECT ts, equity FROM equity_blocks WHERE run_id=? ORDER BY last_ts DESC, block DESC"
        " LIMIT 1",
        (run_id,),
    ).fetchone()
    if row is None:
        return None
    ts, equity = _columns(run_id, row)
    return float(equity[int(np.flatnonzero(ts == ts.max())[-1])])


def read_chunks(db: sqlite3.Connection, run_id: str, chunk: int) -> Iterator[EquityChunk]:
    """The run's curve in time order, in chunks of about `chunk` snapshots."""
    bounds = db.execute(
        "SELECT first_ts, last_ts FROM equity_blocks WHERE run_id=? ORDER BY block", (run_id,)
    ).fetchall()
    ordered = all(bounds[i][1] <= bounds[i + 1][0] for i in range(len(bounds) - 1))
    cursor = db.execute(
        "SELECT ts, equity, cash, unrealized_pnl FROM equity_blocks WHERE run_id=? ORDER BY block",
        (run_id,),
    )
    if not ordered:
        yield from _split(_sorted(_decode(run_id, cursor)), chunk)
        return
    pending: list[EquityChunk] = []
    size = 0
    for block in _decode(run_id, cursor):
        pending.append(block)
        size += len(block)
        if size >= chunk:
            yield _concat(pending)
            pending, size = [], 0
    if pending:
        yield _concat(pending)


def _decode(run_id: str, cursor: sqlite3.Cursor) -> Iterator[EquityChunk]:
    for row in cursor:
        ts, equity, cash, upnl = _columns(run_id, row)
        yield EquityChunk(
            ts.astype(np.int64),
            equity.astype(np.float64),
            cash.astype(np.float64),
            upnl.astype(np.float64),
        )


def _columns(run_id: str, blobs: tuple[object, ...]) -> list[npt.NDArray[np.generic]]:
    """The columns of one stored block (ts first, then floats), all of one length. A
    block cut short or not a byte string (a torn write, an edit by hand) is a damaged
    store, said in one line, not a numpy error or a curve whose columns do not line up."""
    columns = [b for b in blobs if isinstance(b, bytes) and len(b) % 8 == 0]
    if len(columns) != len(blobs) or len({len(b) for b in columns}) != 1:
        raise StoreError(f"the equity curve of run {run_id} is damaged (a block cut short)")
    ts, *floats = columns
    return [np.frombuffer(ts, dtype=_TS), *(np.frombuffer(f, dtype=_F8) for f in floats)]


def _concat(parts: list[EquityChunk]) -> EquityChunk:
    if len(parts) == 1:
        return parts[0]
    return EquityChunk(
        np.concatenate([p.ts for p in parts]),
        np.concatenate([p.equity for p in parts]),
        np.concatenate([p.cash for p in parts]),
        np.concatenate([p.unrealized_pnl for p in parts]),
    )


def _sorted(blocks: Iterator[EquityChunk]) -> EquityChunk:
    whole = _concat(list(blocks))
    order = np.argsort(whole.ts, kind="stable")
    return EquityChunk(
        whole.ts[order], whole.equity[order], whole.cash[order], whole.unrealized_pnl[order]
    )


def _split(whole: EquityChunk, chunk: int) -> Iterator[EquityChunk]:
    for start in range(0, len(whole), chunk):
        end = start + chunk
        yield EquityChunk(
            whole.ts[start:end],
            whole.equity[start:end],
            whole.cash[start:end],
            whole.unrealized_pnl[start:end],
        )


def migrate_rows(db: sqlite3.Connection) -> None:
    """Schema 1 kept one row per snapshot in `equity`: move them into blocks, run by
    run, in their old read order (ts, rowid), then drop the table (caller holds the
    transaction)."""
    runs = [r[0] for r in db.execute("SELECT DISTINCT run_id FROM equity ORDER BY run_id")]
    for run_id in runs:
        buffer = EquityBuffer()
        buffer.run_id = run_id
        block = next_block(db, run_id)
        cursor = db.execute(
            "SELECT ts, equity, cash, unrealized_pnl FROM equity WHERE run_id=? ORDER BY ts, rowid",
            (run_id,),
        )
        for row in cursor:
            buffer.add(*row)
            if len(buffer) >= BLOCK_ROWS:
                block = buffer.write(db, block)
        buffer.write(db, block)
    db.execute("DROP TABLE equity")
