"""Which trade a funding payment belongs to (trades.csv's `funding`): the one whose
position held the settlement.

A payment strictly inside a trade's life is its own. One at the very time of a fill
of its symbol can have come before that time's fills or after them: a backtest's
candle fills are stamped at the candle's close and the settlement at that close comes
after them (feeds.historical), a walked candle's settlement before its point's fills
(orchestrator.long_candles), a quote run's settlement after the quotes of its time.
The stored row says which: its `position` is the one held at the settlement, and the
position before that time's fills is known from them. A payment on another position
than the one before the fills came after them: it is the trade's that the fills
opened (or kept open), not the one they closed. (Taking every payment at a fill's
time as before it left a settlement just after an opening fill in no trade, and gave
one after a flip to the trade the flip had closed.) When the row cannot tell (the
same position before and after the fills), the payment is taken as before them.
"""

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from perps_bot.storage import FundingRecord


class FundingIndex:
    """Per-symbol cumulative funding, for the payments a trade's position held, by
    bisection; `fills_at` is told the position before the first fill of each time
    (fills in `seq` order), before `between` asks about that time."""

    def __init__(self, funding: Iterable[FundingRecord]) -> None:
        # per symbol: the payment times, sums[i] = the sum of the first i payments (a
        # leading 0.0, so the sum up to a time is one lookup at the bisection index),
        # and each payment's position and amount (the ties with fills)
        self._series: dict[str, tuple[list[int], list[float], list[tuple[float, float]]]] = {}
        for row in sorted(funding, key=lambda f: f.ts):  # stable: ties keep store order
            times, sums, rows = self._series.setdefault(row.symbol, ([], [0.0], []))
            times.append(row.ts)
            sums.append(sums[-1] + row.payment)
            rows.append((row.position, row.payment))
        self._before: dict[tuple[str, int], float] = {}  # (symbol, ts) -> position

    def fills_at(self, symbol: str, ts: int, position_before: float) -> None:
        """The first fill of `symbol` at `ts` found the position `position_before`."""
        series = self._series.get(symbol)
        if series is not None:
            times = series[0]
            i = bisect_left(times, ts)
            if i < len(times) and times[i] == ts:  # a settlement at a fill's time
                self._before[symbol, ts] = position_before

    def between(self, symbol: str, open_ts: int, close_ts: int) -> float:
        """The payments of a trade of `symbol` opened by a fill at `open_ts` and closed
        by one at `close_ts`. Summed as the payments themselves when a settlement shares
        a fill's time and came after its fills (a difference of running sums left a
        trade that held none -1.7e-18 instead of 0)."""
        series = self._series.get(symbol)
        if series is None or close_ts <= open_ts:
            return 0.0
        times, sums, rows = series
        lo, hi = bisect_right(times, open_ts), bisect_right(times, close_ts)
        joined, left = self._after_fills(symbol, open_ts), self._after_fills(symbol, close_ts)
        if not joined and not left:
            return sums[hi] - sums[lo]
        paid = 0.0
        for i in [*joined, *(i for i in range(lo, hi) if i not in left)]:
            paid += rows[i][1]
        return paid

    def _after_fills(self, symbol: str, ts: int) -> list[int]:
        """The payments at `ts` (their indices) that came after the fills of that time
        (on another position than the one before them)."""
        before = self._before.get((symbol, ts))
        if before is None:
            return []
        times, _, rows = self._series[symbol]
        return [
            i
            for i in range(bisect_left(times, ts), bisect_right(times, ts))
            if not math.isclose(rows[i][0], before, rel_tol=1e-9, abs_tol=1e-12)
        ]
