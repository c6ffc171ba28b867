"""The equity rows of a quiet stretch of candles (orchestrator.quiet): the due times and
the risk gate's band each candle's snapshot is checked against, the rows of the
candles whose snapshot is a plain row, found ahead of the strategy's walk (`scan`) and
added once the strategy has walked them (`keep`), and the chart's samples among them
(`PlotSampler.due`). The walk makes one per stretch and drives it.
"""

from bisect import bisect_left
from collections.abc import Callable
from struct import Struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the walk that keeps these rows (it imports this module)
    from perps_bot.orchestrator.quiet import QuietStretches


#: `Struct(f"{count}d").pack` by count: a stretch's rows' amounts as the equity buffer's
#: bytes (native float64, as its array holds them)
_PACKERS: dict[int, Callable[..., bytes]] = {}


def _packer(count: int) -> Callable[..., bytes]:
    pack = _PACKERS.get(count)
    if pack is None:
        pack = _PACKERS[count] = Struct(f"{count}d").pack
    return pack


class QuietRows:
    """The equity snapshots of a quiet stretch (`_walk_quiet`): the due times and
    bands they are checked against, and the rows of candles that need nothing else
    (`scan`), added once the strategy has walked them (`keep`)."""

    __slots__ = (
        "add_ts",
        "add_ts_bytes",
        "add_values",
        "add_values_bytes",
        "cash",
        "caught_up",
        "entry",
        "eqs",
        "every",
        "floor",
        "last_equity",
        "long_candles",
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
        "ts_bytes",
        "unrealized",
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
        ts_bytes: memoryview,
    ) -> None:
        """`first`: the stretch's first candle; `spaced`: the block's candles are at
        least the equity interval apart (each one's row is due after the one before);
        `ts_bytes`: the block's times as int64 bytes."""
        p = run.primary
        self.plot = p.plot
        self.plot_at: list[int] = []  # the chart's samples among the rows `scan` found
        # the strategy's walk samples the chart when it plots nothing but this symbol
        last_price = run._last_price
        self.solo = len(last_price) == 1 and symbol in last_price
        buffer = p.rec.store.equity_sink(p.rec.run_id)
        self.add_ts, self.add_values = buffer.ts.fromlist, buffer.values.fromlist
        # `keep`'s rows go in as bytes: the times straight from the block's int64 array,
        # the amounts packed by struct (a conversion per number of a fifth of the
        # instructions `fromlist` takes; the same bytes either way)
        self.add_ts_bytes, self.add_values_bytes = buffer.ts.frombytes, buffer.values.frombytes
        self.ts_bytes = ts_bytes
        self.size, self.entry = terms
        self.cash = p.ledger.wallet_balance()
        self.every = run._equity_every
        self.long_candles = run._long_candles
        self.spaced = spaced
        self.caught_up = first  # candles before this one are caught up (all stages)
        self.last_equity: float | None = None
        self.start = self.stop = 0
        self.eqs: list[float] = []
        self.unrealized: list[float] = []
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
        unrealized = [0.0 + size * (mark - entry) for mark in marks[k:stop]]
        eqs = [cash + u for u in unrealized]
        floor, peak = self.floor, self.peak
        for n in range(len(eqs)):
            if not floor < eqs[n] <= peak:  # the first out of the band: `_snapshot`
                stop = k + n
                break
        if self.solo:  # the sample that thins the chart's samples: `_quiet_snapshot`
            self.plot_at, stop = self.plot.due(ts, k, stop)
        self.stop, self.eqs, self.unrealized = stop, eqs, unrealized
        return stop

    def keep(self, ts: list[int], k: int) -> None:
        """Add the rows `scan` found of the candles before k."""
        start = self.start
        n = min(k, self.stop) - start
        if n <= 0:
            return
        eqs, unrealized = self.eqs, self.unrealized
        if n < len(eqs):
            eqs, unrealized = eqs[:n], unrealized[:n]
        values = [self.cash] * (3 * n)
        values[0::3], values[2::3] = eqs, unrealized
        self.add_ts_bytes(self.ts_bytes[8 * start : 8 * (start + n)])
        self.add_values_bytes(_packer(3 * n)(*values))
        self.last_equity = eqs[-1]
        t = ts[start + n - 1]
        self.next_equity = t - t % self.every + self.every
