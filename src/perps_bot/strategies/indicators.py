"""Incremental indicators: O(1) per update, pure Python floats, no numpy.

Strategies see one event at a time, so each indicator keeps a fixed ring buffer
and running sums instead of recomputing over a window (a backtest feeds
hundreds of thousands of bars; numpy per bar would be slower than plain floats
at these window sizes).

Running sums of floats drift: every add/subtract rounds, and over a long run
the error accumulates. Each window indicator therefore recomputes its sums
exactly (math.fsum) every time the ring buffer wraps around, which costs one
pass over the window per `window` updates, i.e. O(1) amortised. The variance
uses sums of values shifted by the window mean at the last resync, which avoids
the cancellation of the textbook sum-of-squares formula at price levels of
tens of thousands with small moves.
"""

import math
from bisect import bisect_left
from collections.abc import Callable, Sequence

from perps_bot.domain.pickled import set_slots, slot_state


def _no_plot(at: int) -> None:
    """No chart sample asked for."""


_MEAN_PAIR_SLOTS = (
    "_buf",
    "_fast_sum",
    "_j",
    "_n",
    "_slow_sum",
    "fast",
    "fast_mean",
    "slow",
    "slow_mean",
)


class MeanPair:
    """Simple moving averages over the last `fast` and the last `slow` values of one
    series (fast < slow), sharing one ring buffer: one call per bar instead of one per
    average, which matters at a backtest's hundreds of thousands of bars.

    Each running sum is updated and resynchronised (math.fsum over its own window,
    every `window` updates) exactly as a separate ring buffer per average would, so
    the means are the same floats either way.
    """

    __slots__ = _MEAN_PAIR_SLOTS

    def __reduce__(self) -> tuple[object, ...]:
        return (MeanPair, (self.fast, self.slow), slot_state(self, _MEAN_PAIR_SLOTS))

    def __setstate__(self, state: tuple[None, dict[str, object]]) -> None:
        set_slots(self, state)

    def __init__(self, fast: int, slow: int) -> None:
        if not 1 <= fast < slow:
            raise ValueError(f"need 1 <= fast < slow, got fast={fast} slow={slow}")
        self.fast = fast
        self.slow = slow
        self._buf = [0.0] * slow
        self._j = 0  # next write position in the ring
        self._n = 0  # values pushed
        self._fast_sum = 0.0
        self._slow_sum = 0.0
        self.fast_mean = math.nan
        self.slow_mean = math.nan

    @property
    def ready(self) -> bool:
        """Whether `slow` values are in (both means are known)."""
        return self._n >= self.slow

    def push(self, value: float) -> bool:
        """Add `value`; return True (and update both means) once `slow` values are in."""
        self.run([value], 0, 1, 0)
        return self.ready

    def run(
        self,
        values: list[float],
        i: int,
        j: int,
        sign: int,
        plot_at: Sequence[int] = (),
        plot: Callable[[int], None] = _no_plot,
    ) -> int:
        """Add values[i], values[i + 1], ... up to values[j - 1], and stop after the
        first one whose means are both known and differ the other way than `sign` says
        (+1: fast above slow, -1: below; any other `sign` stops at the first that
        differ); return the index after the last value added. One call for a stretch
        of a backtest's bars, with the running sums in locals: the same floats as one
        call per value. `plot(k)` is called for each k of `plot_at` (ascending) added,
        the means then those after values[k] (a chart's sample without a call per
        value). `values` is a list, not any sequence: compiled (mypyc), reading a list
        item is a direct load where a sequence's goes through the generic protocol."""
        early = self.slow - 1 - self._n  # values before the first with both means
        if early > 0:
            k = min(j, i + early)
            self._add(values, i, k, True, True, (), _no_plot)
            self.fast_mean = self.slow_mean = math.nan
            for at in plot_at:
                if i <= at < k:
                    plot(at)  # the means are not known yet: NaN
            i = k
        return self._add(values, i, j, sign == 1, sign == -1, plot_at, plot)

    def _add(
        self,
        values: list[float],
        i: int,
        j: int,
        above: bool,
        below: bool,
        plot_at: Sequence[int],
        plot: Callable[[int], None],
    ) -> int:
        """`run`'s loop; `above`, `below`: the sides of fast against slow it goes on
        along. A slot of the ring not written yet holds 0.0, and `value - 0.0` is
        `value`: the sums of the first values need no test of their own. The ring's
        write position is `n % slow`, so the slow sum's resync (every `slow` values) is
        where the position wraps to 0; the fast sum's (every `fast` values) counts down
        instead of taking a modulo per value."""
        buf = self._buf
        fast, slow, pos = self.fast, self.slow, self._j
        fast_sum, slow_sum = self._fast_sum, self._slow_sum
        fast_mean, slow_mean = self.fast_mean, self.slow_mean
        to_resync = fast - self._n % fast  # values until the fast sum's next resync
        plots = bisect_left(plot_at, i)
        next_plot = plot_at[plots] if plots < len(plot_at) else j
        k = j
        for at in range(i, j):
            value = values[at]
            # buf[pos - fast]: a negative index wraps the ring
            fast_sum += value - buf[pos - fast]
            slow_sum += value - buf[pos]
            buf[pos] = value
            pos += 1
            if pos == slow:
                pos = 0
                slow_sum = math.fsum(buf)
            to_resync -= 1
            if not to_resync:
                to_resync = fast
                window = buf[pos - fast : pos] if pos >= fast else buf[pos - fast :] + buf[:pos]
                fast_sum = math.fsum(window)
            fast_mean = fast_sum / fast
            slow_mean = slow_sum / slow
            if at == next_plot:
                self.fast_mean, self.slow_mean = fast_mean, slow_mean
                plot(at)
                plots += 1
                next_plot = plot_at[plots] if plots < len(plot_at) else j
            if (fast_mean > slow_mean and not above) or (fast_mean < slow_mean and not below):
                k = at + 1
                break
        self._n += k - i
        self._j = pos
        self._fast_sum, self._slow_sum = fast_sum, slow_sum
        self.fast_mean, self.slow_mean = fast_mean, slow_mean
        return k


_ROLLING_STATS_SLOTS = (
    "_buf",
    "_count",
    "_i",
    "_last",
    "_s1",
    "_s2",
    "_same",
    "_shift",
    "mean",
    "std",
    "window",
)


class RollingStats:
    """Mean and population standard deviation over the last `window` values.

    A window holding one value `window` times has `std` exactly 0.0 and `mean` exactly
    that value: the running sums would leave a rounding residue of the values that left
    the window (a std of ~1e-9 of the price instead of 0), whose z-scores are noise."""

    __slots__ = _ROLLING_STATS_SLOTS

    def __reduce__(self) -> tuple[object, ...]:
        return (RollingStats, (self.window,), slot_state(self, _ROLLING_STATS_SLOTS))

    def __init__(self, window: int) -> None:
        if window < 2:
            raise ValueError("window must be >= 2")
        self.window = window
        self._buf = [0.0] * window
        self._i = 0
        self._count = 0
        self._shift = 0.0
        self._s1 = 0.0  # sum of (x - shift)
        self._s2 = 0.0  # sum of (x - shift)**2
        self._last = math.nan  # the last value pushed
        self._same = 0  # how many values in a row were equal to it
        self.mean = 0.0
        self.std = 0.0

    @property
    def full(self) -> bool:
        """True once `window` values were pushed (`mean` and `std` are defined)."""
        return self._count >= self.window

    def push(self, value: float) -> bool:
        """Add `value`; return True (and update `mean`, `std`) once the window is full."""
        window = self.window
        if self._count == 0:
            self._shift = value
        d = value - self._shift
        i = self._i
        if self._count < window:
            self._count += 1
            self._s1 += d
            self._s2 += d * d
        else:
            old = self._buf[i] - self._shift
            self._s1 += d - old
            self._s2 += d * d - old * old
        self._buf[i] = value
        i += 1
        if i == window:
            i = 0
            if self._count == window:
                self._resync()
        self._i = i
        if value == self._last:
            self._same += 1
        else:
            self._last = value
            self._same = 1
        if self._count < window:
            return False
        if self._same >= window:  # a flat window: no residue of the values that left
            self.mean = value
            self.std = 0.0
            return True
        m1 = self._s1 / window
        var = self._s2 / window - m1 * m1
        self.mean = self._shift + m1
        self.std = math.sqrt(var) if var > 0.0 else 0.0
        return True

    def __setstate__(self, state: tuple[None, dict[str, object]]) -> None:
        """Unpickling: a checkpoint written before `_last` and `_same` existed (same
        package version, older code) restores too; the run of equal values counts from
        the next push."""
        self._last = math.nan
        self._same = 0
        set_slots(self, state)

    def _resync(self) -> None:
        buf = self._buf
        shift = math.fsum(buf) / self.window
        self._shift = shift
        self._s1 = math.fsum([x - shift for x in buf])
        self._s2 = math.fsum([(x - shift) * (x - shift) for x in buf])


_WILDER_RSI_SLOTS = ("_avg_gain", "_avg_loss", "_changes", "_prev", "period")


class WilderRsi:
    """Relative Strength Index with Wilder's smoothing over `period` price changes.

    The first value comes after `period` changes (period + 1 prices): the average
    gain and loss are seeded with simple means, then smoothed as
    avg = (avg * (period - 1) + x) / period. RSI is 100 when there were only
    gains, 0 when only losses, 50 when the price did not move at all.
    """

    __slots__ = _WILDER_RSI_SLOTS

    def __reduce__(self) -> tuple[object, ...]:
        return (WilderRsi, (self.period,), slot_state(self, _WILDER_RSI_SLOTS))

    def __setstate__(self, state: tuple[None, dict[str, object]]) -> None:
        set_slots(self, state)

    def __init__(self, period: int) -> None:
        if period < 1:
            raise ValueError("period must be >= 1")
        self.period = period
        self._prev: float | None = None
        self._changes = 0
        self._avg_gain = 0.0
        self._avg_loss = 0.0

    def push(self, price: float) -> float | None:
        """Add a price; return the RSI once `period` changes were seen, else None."""
        prev = self._prev
        self._prev = price
        if prev is None:
            return None
        change = price - prev
        gain = change if change > 0.0 else 0.0
        loss = -change if change < 0.0 else 0.0
        period = self.period
        if self._changes < period:
            # seeding: sum the first `period` gains and losses, then take their means
            self._changes += 1
            self._avg_gain += gain
            self._avg_loss += loss
            if self._changes < period:
                return None
            self._avg_gain /= period
            self._avg_loss /= period
        else:
            self._avg_gain = (self._avg_gain * (period - 1) + gain) / period
            self._avg_loss = (self._avg_loss * (period - 1) + loss) / period
        avg_gain, avg_loss = self._avg_gain, self._avg_loss
        if avg_loss == 0.0:
            return 100.0 if avg_gain > 0.0 else 50.0
        return 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
