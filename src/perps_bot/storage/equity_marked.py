"""Equity snapshots kept as their recipe until the buffer is written (`EquityBuffer`).

A quiet stretch of a backtest (orchestrator.quiet_rows) holds the cash and the
position fixed, so each of its snapshots follows from its candle's mark alone:
unrealized = 0.0 + size * (mark - entry), equity = cash + unrealized. Boxing those two
floats per candle and packing them into the buffer cost the loop about a twentieth of
its instructions; the stretch now leaves one record (where it goes among the other
snapshots, the block's times and marks, which candles, the cash and the position),
and the rows are computed when the buffer is written, a few numpy operations per
batch. numpy's float64 operations are IEEE's, in the same order: the same bits as the
loop computed one by one (tests/storage/test_equity_marked.py).
"""

from __future__ import annotations

from array import array

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


class MarkedRows:
    """The records of one buffer, as columns: (after, start, rows) in an int64 `array`,
    (cash, size, entry) in a float64 one (two C calls a record, read by numpy without
    a conversion per number), and where each block of candles' records begin."""

    def __init__(self, plain: array[int]) -> None:
        """`plain`: the times of the buffer's other snapshots (how many there are tells
        where a record's go)."""
        self.plain = plain
        self.counts: array[int] = array("q")  # after, start, rows per record
        self.amounts: array[float] = array("d")  # cash, size, entry per record
        # their `fromlist`, bound once (the arrays are emptied in place, never replaced)
        self.add_counts, self.add_amounts = self.counts.fromlist, self.amounts.fromlist
        #: (first record, times, marks) of each run of records over one block of candles
        self.blocks: list[tuple[int, IntArray, FloatArray]] = []
        self.rows = 0

    def add(
        self,
        times: IntArray,
        marks: FloatArray,
        start: int,
        count: int,
        cash: float,
        size: float,
        entry: float,
    ) -> None:
        """`count` snapshots at `times[start:start + count]`, each of the cash and the
        position given, marked at its mark in `marks`: computed when the buffer is
        written, after the buffer's snapshots added before this call."""
        blocks = self.blocks
        if not blocks or blocks[-1][1] is not times or blocks[-1][2] is not marks:
            blocks.append((len(self.counts) // 3, times, marks))
        self.add_counts([len(self.plain), start, count])
        self.add_amounts([cash, size, entry])
        self.rows += count

    def combined(self, ts: IntArray, table: FloatArray) -> tuple[IntArray, FloatArray, IntArray]:
        """The snapshots `ts`/`table` (rows of equity, cash, unrealized) followed by the
        records', computed, and each row's place in the order they were added (a key:
        `np.lexsort((key, ts))` sorts them by time as a stable sort of that order would).
        No view of this object's arrays survives (they are emptied in place)."""
        counts = np.frombuffer(self.counts, dtype=np.int64).reshape(-1, 3).copy()
        amounts = np.frombuffer(self.amounts, dtype=np.float64).reshape(-1, 3).copy()
        after, rows = counts[:, 0], counts[:, 2]
        marked_ts, marked_table = self._computed(counts[:, 1], rows, amounts)
        # the i-th row added the plain way is 2i + 1; a record's rows come after `after`
        # of them: 2 * after (records at the same place keep their turn: stable sorts)
        key = np.concatenate(
            (2 * np.arange(ts.shape[0], dtype=np.int64) + 1, np.repeat(2 * after, rows))
        )
        return np.concatenate((ts, marked_ts)), np.concatenate((table, marked_table)), key

    def _computed(
        self, starts: IntArray, counts: IntArray, amounts: FloatArray
    ) -> tuple[IntArray, FloatArray]:
        """Every record's snapshots, in order: one gather and a few operations per block
        of candles."""
        ts_parts: list[IntArray] = []
        table_parts: list[FloatArray] = []
        ends = [first for first, _, _ in self.blocks[1:]] + [starts.shape[0]]
        for (lo, times, marks), hi in zip(self.blocks, ends, strict=True):
            n = counts[lo:hi]
            index = np.repeat(starts[lo:hi] - (np.cumsum(n) - n), n) + np.arange(int(n.sum()))
            cash, size, entry = (np.repeat(amounts[lo:hi, k], n) for k in range(3))
            table = np.empty((index.shape[0], 3), dtype=np.float64)
            with np.errstate(all="ignore"):  # an overflow is inf, as Python's floats make it
                unrealized = 0.0 + size * (marks[index] - entry)
                table[:, 0], table[:, 1], table[:, 2] = cash + unrealized, cash, unrealized
            ts_parts.append(times[index])
            table_parts.append(table)
        return np.concatenate(ts_parts), np.concatenate(table_parts)

    def clear(self) -> None:
        del self.counts[:]
        del self.amounts[:]
        self.blocks.clear()
        self.rows = 0
