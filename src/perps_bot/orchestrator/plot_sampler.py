"""Samples each symbol's last price and the strategy's plotted indicators for the report.

Why not every event or every equity snapshot: a 500k-candle backtest takes a
snapshot per candle and the snapshot is already a fifth of its time. The sampler
starts at the equity interval and, whenever a symbol holds `cap` samples, keeps
only the first sample of every doubled interval and doubles its own interval. So a
run of any length ends with between cap/2 and cap samples per symbol, evenly
spread in time, and the per-snapshot cost is one comparison except on the few
thousand sampled snapshots. The price chart's zoom therefore resolves to the final
interval (reported in the chart title), which is what a page of a few MB can show
anyway.
"""

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

import numpy as np

from perps_bot.storage import PRICE, RunStore
from perps_bot.strategies import Strategy

DEFAULT_CAP = 4096

#: one sample of one symbol: (time, last price, the strategy's values or None)
Sample = tuple[int, float, Sequence[float] | None]


def next_edge(ts: int, every: int) -> int:
    """The first multiple of `every` after `ts`: the next sample's due time."""
    return ts - ts % every + every


class PlotSampler:
    __slots__ = (
        "_cap",
        "_count",
        "_last_price",
        "_last_ts",
        "_names",
        "_samples",
        "_strategy",
        "interval_ms",
        "next_ts",
    )

    def __init__(
        self,
        strategy: Strategy,
        last_price: dict[str, float],
        interval_ms: int,
        cap: int = DEFAULT_CAP,
    ) -> None:
        if interval_ms <= 0 or cap < 2:
            raise ValueError("interval_ms must be positive and cap at least 2")
        self._strategy = strategy
        self._last_price = last_price  # the orchestrator's live dict (read, never written)
        self._names = (PRICE, *strategy.plot_series())
        self._cap = cap
        self._samples: dict[str, list[Sample]] = {}
        self._count = 0  # samples of the symbol with the most
        self.interval_ms = interval_ms
        self.next_ts = -(2**62)  # the first snapshot is sampled
        self._last_ts: int | None = None

    def sample(self, ts: int) -> None:
        """Record every symbol's last price and indicators at `ts` (callers check
        `ts >= next_ts` first, which is the only per-snapshot cost). The run also
        samples its last time, so the series ends where the run ended."""
        if ts == self._last_ts:
            return
        values = self._strategy.plot_values
        samples = self._samples
        for symbol, price in self._last_price.items():
            rows = samples.get(symbol)
            if rows is None:
                rows = samples[symbol] = []
            rows.append((ts, price, values(symbol)))
        self._taken(ts)

    def due(self, ts: list[int], i: int, j: int) -> tuple[list[int], int]:
        """The indices of the times ts[i:j] (ascending, each a snapshot) that `sample`
        would take, in order, up to the one that thins the samples: (those before it,
        its index or j). A quiet stretch takes them with `add` without stopping there."""
        due: list[int] = []
        next_ts, every = self.next_ts, self.interval_ms
        room = self._cap - self._count - 1  # samples before the one that thins
        while True:
            i = bisect_left(ts, next_ts, i, j)
            if i == j or len(due) >= room:
                return due, i
            due.append(i)
            next_ts = next_edge(ts[i], every)
            i += 1

    def add(self, ts: int, symbol: str, price: float, values: Sequence[float] | None) -> None:
        """`sample(ts)` when `symbol` is the only one with a last price, its price then
        `price` and the strategy's values `values`, at a time `due` gave (so before
        the sample that thins: `_taken` never thins here)."""
        self._samples.setdefault(symbol, []).append((ts, price, values))
        self._taken(ts)

    def _taken(self, ts: int) -> None:
        """The tail of a sample at `ts` (`sample`, `add`): counted, thinned at the cap
        (before the next due time, which is on the doubled interval then)."""
        self._last_ts = ts
        self._count += 1
        if self._count >= self._cap:
            self._thin()
        self.next_ts = next_edge(ts, self.interval_ms)

    def state(self) -> tuple[Any, ...]:
        """The samples so far (a paper run's checkpoint: a resumed run's chart begins
        where the run began, not at its checkpoint)."""
        samples = {symbol: list(rows) for symbol, rows in self._samples.items()}
        return samples, self._count, self.interval_ms, self.next_ts, self._last_ts

    def restore_state(self, state: tuple[Any, ...]) -> None:
        samples, self._count, self.interval_ms, self.next_ts, self._last_ts = state
        self._samples = {symbol: list(rows) for symbol, rows in samples.items()}

    def _thin(self) -> None:
        """Double the interval; keep the first sample of each new interval."""
        self.interval_ms *= 2
        every = self.interval_ms
        for symbol, rows in self._samples.items():
            kept: list[Sample] = []
            previous = None
            for row in rows:
                slot = row[0] // every
                if slot != previous:
                    kept.append(row)
                    previous = slot
            self._samples[symbol] = kept
        self._count = max(len(rows) for rows in self._samples.values())

    def write(self, store: RunStore, run_id: str) -> None:
        width = len(self._names) - 1
        for symbol, rows in sorted(self._samples.items()):
            extra = np.full((len(rows), width), np.nan)
            for i, (_ts, _price, row) in enumerate(rows):
                if row is not None:
                    n = min(len(row), width)
                    extra[i, :n] = row[:n]
            values = {self._names[0]: np.asarray([r[1] for r in rows], dtype=np.float64)}
            for j, name in enumerate(self._names[1:]):
                values[name] = extra[:, j]
            ts = np.asarray([r[0] for r in rows], dtype=np.int64)
            store.put_plot_series(run_id, symbol, ts, values)
