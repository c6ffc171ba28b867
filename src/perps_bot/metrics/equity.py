"""Streaming statistics of the equity curve: drawdown, periodic returns, chart series.

A run stores at least one equity row per simulated minute, so a long backtest
has millions of rows. They are read in chunks (`RunStore.iter_equity`) and folded
into running aggregates with numpy per chunk; nothing grows with the row count:

- drawdown: the running peak carried across chunks;
- returns: the curve is sampled on a grid t0, t0 + P, t0 + 2P, ... (t0 = first
  row, P = sharpe_period) taking the last equity at or before each grid time; a
  grid time equal to a chunk's last timestamp waits for the next chunk, because
  more rows with that timestamp may follow. Returns feed mergeable central
  moments (Pebay's pairwise update), which give mean, sample std, skewness and
  kurtosis without keeping the series;
- charts: a fixed number of time buckets keeping close / min / max equity and the
  worst drawdown per bucket, so the SVG stays small whatever the row count.

A return whose previous sample is not positive (an account wiped out) is not a
return; it is skipped rather than dividing by zero.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CHART_BUCKETS = 2000


@dataclass(slots=True)
class Moments:
    """Count, mean and central moment sums M2..M4 of a sample, mergeable chunk by chunk."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    m3: float = 0.0
    m4: float = 0.0
    downside_sq: float = 0.0  # sum of min(r, 0)^2

    def add(self, values: FloatArray) -> None:
        if values.size == 0:
            return
        nb = int(values.size)
        mean_b = float(values.mean())
        dev = values - mean_b
        dev2 = dev * dev
        m2b = float(dev2.sum())
        m3b = float((dev2 * dev).sum())
        m4b = float((dev2 * dev2).sum())
        neg = np.minimum(values, 0.0)
        self.downside_sq += float((neg * neg).sum())
        if self.n == 0:
            self.n, self.mean, self.m2, self.m3, self.m4 = nb, mean_b, m2b, m3b, m4b
            return
        na = self.n
        n = na + nb
        delta = mean_b - self.mean
        m2a, m3a = self.m2, self.m3
        self.m4 = (
            self.m4
            + m4b
            + delta**4 * na * nb * (na * na - na * nb + nb * nb) / n**3
            + 6 * delta**2 * (na * na * m2b + nb * nb * m2a) / n**2
            + 4 * delta * (na * m3b - nb * m3a) / n
        )
        self.m3 = (
            m3a
            + m3b
            + delta**3 * na * nb * (na - nb) / n**2
            + 3 * delta * (na * m2b - nb * m2a) / n
        )
        self.m2 = m2a + m2b + delta**2 * na * nb / n
        self.mean += delta * nb / n
        self.n = n

    @property
    def sample_std(self) -> float | None:
        if self.n < 2:
            return None
        return math.sqrt(max(self.m2, 0.0) / (self.n - 1))

    @property
    def downside_deviation(self) -> float | None:
        if self.n < 2:
            return None
        return math.sqrt(self.downside_sq / (self.n - 1))

    @property
    def skew(self) -> float | None:
        """Population skewness m3 / m2^1.5 (moments divided by n)."""
        if self.n < 2 or self.m2 <= 0:
            return None
        return float((self.m3 / self.n) / (self.m2 / self.n) ** 1.5)

    @property
    def kurtosis(self) -> float | None:
        """Population (non-excess) kurtosis m4 / m2^2: 3 for a normal distribution."""
        if self.n < 2 or self.m2 <= 0:
            return None
        return (self.m4 / self.n) / (self.m2 / self.n) ** 2


@dataclass(frozen=True, slots=True)
class ChartSeries:
    """Bucketed curve for plotting: one point per non-empty time bucket."""

    ts: list[int]
    close: list[float]
    low: list[float]
    high: list[float]
    drawdown: list[float]  # worst drawdown fraction within the bucket (>= 0)


@dataclass(slots=True)
class EquityStats:
    """Aggregates of one pass over the equity rows."""

    rows: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    first_equity: float | None = None
    last_equity: float | None = None
    max_drawdown: float = 0.0
    returns: Moments = field(default_factory=Moments)


class EquityAccumulator:
    """Fold equity chunks (time-ordered) into EquityStats and a ChartSeries."""

    def __init__(
        self,
        period_ms: int,
        chart_start: int | None = None,
        chart_end: int | None = None,
        chart_buckets: int = CHART_BUCKETS,
    ) -> None:
        if period_ms <= 0:
            raise ValueError("period_ms must be positive")
        self.stats = EquityStats()
        self._period = period_ms
        self._peak = -math.inf
        self._next_k = 0  # next grid index to sample
        self._prev_sample: float | None = None
        self._carry_equity: float | None = None  # last equity of the previous chunks
        self._chart_start = chart_start
        self._chart_span = (
            None
            if chart_start is None or chart_end is None
            else (max(chart_end - chart_start, 0) + 1)
        )
        n = chart_buckets
        self._buckets = n
        self._b_close = np.full(n, np.nan)
        self._b_low = np.full(n, np.nan)
        self._b_high = np.full(n, np.nan)
        self._b_dd = np.full(n, np.nan)

    def add(self, ts: IntArray, equity: FloatArray) -> None:
        if ts.size == 0:
            return
        st = self.stats
        if st.first_ts is None:
            st.first_ts = int(ts[0])
            st.first_equity = float(equity[0])
        st.rows += int(ts.size)

        peaks = np.maximum(np.maximum.accumulate(equity), self._peak)
        with np.errstate(divide="ignore", invalid="ignore"):
            dd = np.where(peaks > 0, (peaks - equity) / peaks, 0.0)
        st.max_drawdown = max(st.max_drawdown, float(dd.max()))
        self._peak = float(peaks[-1])

        self._sample_grid(ts, equity, upto=int(ts[-1]), inclusive=False)
        self._chart(ts, equity, dd)

        st.last_ts = int(ts[-1])
        st.last_equity = float(equity[-1])
        self._carry_equity = st.last_equity

    def finish(self) -> EquityStats:
        """Sample the grid points up to and including the last row's time."""
        st = self.stats
        if st.last_ts is not None and st.last_equity is not None:
            self._sample_grid(
                np.asarray([st.last_ts], dtype=np.int64),
                np.asarray([st.last_equity]),
                upto=st.last_ts,
                inclusive=True,
            )
        return st

    def chart(self) -> ChartSeries:
        mask = ~np.isnan(self._b_close)
        idx = np.flatnonzero(mask)
        start = self._chart_start or 0
        span = self._chart_span or 1
        # bucket end time (last ms it covers), integer arithmetic for exactness
        ends = [start + ((int(i) + 1) * span) // self._buckets - 1 for i in idx]
        return ChartSeries(
            ts=ends,
            close=[float(v) for v in self._b_close[mask]],
            low=[float(v) for v in self._b_low[mask]],
            high=[float(v) for v in self._b_high[mask]],
            drawdown=[float(v) for v in self._b_dd[mask]],
        )

    # -- internals -----------------------------------------------------------------
    def _sample_grid(self, ts: IntArray, equity: FloatArray, upto: int, inclusive: bool) -> None:
        first = self.stats.first_ts
        if first is None:
            return
        # grid indices k with first + k * P < upto (or <= upto when inclusive)
        span = upto - first
        last_k = span // self._period if inclusive else (span - 1) // self._period
        if span < 0 or last_k < self._next_k:
            return
        ks = np.arange(self._next_k, last_k + 1, dtype=np.int64)
        grid = first + ks * self._period
        idx = np.searchsorted(ts, grid, side="right") - 1
        carry = self._carry_equity if self._carry_equity is not None else float(equity[0])
        values = np.where(idx >= 0, equity[np.maximum(idx, 0)], carry)
        self._next_k = int(last_k) + 1
        if self._prev_sample is None:
            previous = values[:-1]
            current = values[1:]
        else:
            previous = np.concatenate(([self._prev_sample], values[:-1]))
            current = values
        self._prev_sample = float(values[-1])
        valid = previous > 0
        if np.any(valid):
            self.stats.returns.add(current[valid] / previous[valid] - 1.0)

    def _chart(self, ts: IntArray, equity: FloatArray, dd: FloatArray) -> None:
        if self._chart_start is None or self._chart_span is None:
            return
        rel = np.clip(ts - self._chart_start, 0, self._chart_span - 1)
        bucket = (rel * self._buckets) // self._chart_span
        starts = np.concatenate(([0], np.flatnonzero(bucket[1:] != bucket[:-1]) + 1))
        ids = bucket[starts]
        ends = np.concatenate((starts[1:], [ts.size])) - 1
        self._b_close[ids] = equity[ends]
        self._b_low[ids] = np.fmin(self._b_low[ids], np.minimum.reduceat(equity, starts))
        self._b_high[ids] = np.fmax(self._b_high[ids], np.maximum.reduceat(equity, starts))
        self._b_dd[ids] = np.fmax(self._b_dd[ids], np.maximum.reduceat(dd, starts))
