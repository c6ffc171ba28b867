"""The equity rows of a quiet stretch of candles (orchestrator.quiet): the due times and
the risk gate's band each candle's snapshot is checked against, the rows of the
candles whose snapshot is a plain row, found ahead of the strategy's walk (`scan`) and
added once the strategy has walked them (`keep`, as their recipe: the buffer computes
them when it is written, storage.equity_marked), and the chart's samples among them
(`PlotSampler.due`). The walk makes one per stretch and drives it.
"""

from bisect import bisect_left
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from perps_bot.storage.equity_marked import MarkedRows

if TYPE_CHECKING:  # the walk that keeps these rows (it imports this module)
    from perps_bot.orchestrator.quiet import QuietStretches


class QuietRows:
    """The equity snapshots of a quiet stretch (`_walk_quiet`): the due times and
    bands they are checked against, and the rows of candles that need nothing else
    (`scan`), added once the strategy has walked them (`keep`)."""

    __slots__ = (
        "add_ts",
        "add_values",
        "cash",
        "caught_up",
        "entry",
        "every",
        "floor",
        "last_equity",
        "long_candles",
        "mark_array",
        "marked",
        "marks",
        "next_equity",
        "next_log",
        "next_plot",
        "peak",
        "plot",
        "plot_at",
        "size",
        "solo",
        "spaced",
        "start",
        "stop",
        "times",
        "until",
    )

    def __init__(
        self,
        run: "QuietStretches",
        terms: tuple[float, float],
        first: int,
        *,
        spaced: bool,
        symbol: str,
        times: npt.NDArray[np.int64],
        mark_array: npt.NDArray[np.float64],
    ) -> None:
        """`first`: the stretch's first candle; `spaced`: the block's candles are at
        least the equity interval apart (each one's row is due after the one before);
        `times`, `mark_array`: the block's times and marks as arrays (the rows `keep`
        leaves as their recipe)."""
        p = run.primary
        self.plot = p.plot
        self.plot_at: list[int] = []  # the chart's samples among the rows `scan` found
        # the strategy's walk samples the chart when it plots nothing but this symbol
        last_price = run._last_price
        self.solo = len(last_price) == 1 and symbol in last_price
        buffer = p.rec.store.equity_sink(p.rec.run_id)
        self.add_ts, self.add_values = buffer.ts.fromlist, buffer.values.fromlist
        # `keep`'s rows go in as their recipe (the cash and position are fixed for the
        # stretch): the buffer computes them from the marks when it is written
        self.marked: MarkedRows = buffer.marked  # `add`: a native call (both compiled)
        self.times, self.mark_array = times, mark_array
        self.marks: list[float] = []
        self.size, self.entry = terms
        self.cash = p.ledger.wallet_balance()
        self.every = run._equity_every
        self.long_candles = run._long_candles
        self.spaced = spaced
        self.caught_up = first  # candles before this one are caught up (all stages)
        self.last_equity: float | None = None
        self.start = self.stop = 0
        self.reread(run)

    def reread(self, run: "QuietStretches") -> None:
        """The due times and the risk gate's band, as the full `_snapshot` left them."""
        assert run._next_equity is not None and run._next_log is not None
        self.next_equity, self.next_log = run._next_equity, run._next_log
        p = run.primary
        self.next_plot = p.plot.next_ts
        quiet = p.risk.quiet_band()
        self.floor, self.peak, self.until = quiet if quiet is not None else (0.0, 0.0, -1)

    def scan(self, ts: list[int], marks: list[float], k: int, m: int) -> int:
        """The first of candles k..m-1 whose snapshot needs more than a plain row (or a
        row itself when the candles are not `spaced`), m if none; the rows of those
        before it wait for `keep`, their chart samples are `plot_at`."""
        self.start = self.stop = k
        self.plot_at = []
        next_equity = self.next_equity
        if self.long_candles:
            return k
        if ts[k] < next_equity:  # no row due before that candle
            return bisect_left(ts, next_equity, k, m)
        if not self.spaced:
            return k
        due = min(self.next_log, self.until)
        stop = bisect_left(ts, due if self.solo else min(due, self.next_plot), k, m)
        if stop == k:
            return k
        cash, size, entry = self.cash, self.size, self.entry
        floor, peak = self.floor, self.peak
        for n in range(k, stop):
            if not floor < cash + (0.0 + size * (marks[n] - entry)) <= peak:
                stop = n  # the first out of the band: `_snapshot`
                break
        if self.solo:  # the sample that thins the chart's samples: `_quiet_snapshot`
            self.plot_at, stop = self.plot.due(ts, k, stop)
        self.stop, self.marks = stop, marks
        return stop

    def keep(self, ts: list[int], k: int) -> None:
        """Add the rows `scan` found of the candles before k."""
        start = self.start
        n = min(k, self.stop) - start
        if n <= 0:
            return
        cash, size, entry = self.cash, self.size, self.entry
        self.marked.add(self.times, self.mark_array, start, n, cash, size, entry)
        last = start + n - 1
        self.last_equity = cash + (0.0 + size * (self.marks[last] - entry))
        t = ts[last]
        self.next_equity = t - t % self.every + self.every
