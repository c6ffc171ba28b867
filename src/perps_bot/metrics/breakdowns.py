"""Trades grouped by symbol, side and exit reason, and the account's monthly returns.

A trader's first questions after the headline are "where did it make its money"
(which symbol, long or short, which exit rule) and "was it steady" (month by
month). Both are plain aggregations of data the report already has: the round
trips, and the equity curve streamed once (`MonthlyReturns` folds the same chunks
as `EquityAccumulator`, so a long run still reads its curve once, in bounded memory).
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from perps_bot.domain import DAY_MS
from perps_bot.metrics.equity import FloatArray, IntArray
from perps_bot.metrics.formatting import num
from perps_bot.metrics.trade_records import Trade

BREAKDOWN_KEYS: tuple[str, ...] = ("symbol", "side", "exit_reason")

# "mean_reversion exit z=0.13" -> "mean_reversion exit z": one rule, one row
_READING = re.compile(r"=[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def exit_rule(reason: str) -> str:
    """An exit reason without the indicator readings a strategy writes into it."""
    return _READING.sub("", reason)


@dataclass(frozen=True, slots=True)
class Group:
    key: str
    trades: int
    win_rate: float
    net_pnl: float
    avg_duration_s: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "trades": self.trades,
            "win_rate": num(self.win_rate),
            "net_pnl": num(self.net_pnl),
            "avg_duration_s": num(self.avg_duration_s),
        }


_KEY: dict[str, Callable[[Trade], str]] = {
    "symbol": lambda t: t.symbol,
    "side": lambda t: t.side,
    "exit_reason": lambda t: exit_rule(t.exit_reason),
}


def group_trades(trades: Sequence[Trade], by: str) -> list[Group]:
    """Trades per value of `by` (one of BREAKDOWN_KEYS), sorted by key."""
    key = _KEY[by]
    groups: dict[str, list[Trade]] = {}
    for trade in trades:
        groups.setdefault(key(trade), []).append(trade)
    out = []
    for name in sorted(groups):
        members = groups[name]
        n = len(members)
        out.append(
            Group(
                key=name,
                trades=n,
                win_rate=sum(1 for t in members if t.net_pnl > 0) / n,
                net_pnl=sum(t.net_pnl for t in members),
                avg_duration_s=sum(t.duration_s for t in members) / n,
            )
        )
    return out


def breakdowns(trades: Sequence[Trade]) -> dict[str, list[Group]]:
    return {by: group_trades(trades, by) for by in BREAKDOWN_KEYS}


@dataclass(frozen=True, slots=True)
class MonthReturn:
    month: str  # "2024-01"
    start_equity: float
    end_equity: float

    @property
    def return_pct(self) -> float | None:
        if self.start_equity <= 0:
            return None
        return (self.end_equity / self.start_equity - 1.0) * 100.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "return_pct": num(self.return_pct),
            "end_equity": num(self.end_equity),
        }


class MonthlyReturns:
    """Last equity of every calendar month (UTC) from time-ordered chunks. A month's
    return is its last equity over the previous month's last equity (the initial
    balance for the first month) minus one; months without rows are absent, so the
    next month's return spans the gap and the product of (1 + r) is the whole return."""

    def __init__(self) -> None:
        self._last: dict[int, float] = {}

    def add(self, ts: IntArray, equity: FloatArray) -> None:
        """Record the equity ending each run of rows in one month. The month changes only
        where the UTC day does, so only the first row of each day (a few hundred of half a
        million minutes) goes through the calendar conversion, which is the slow part."""
        if ts.size == 0:
            return
        days = ts // DAY_MS
        firsts = np.concatenate(([0], np.flatnonzero(days[1:] != days[:-1]) + 1))
        months = ts[firsts].astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)
        changes = np.flatnonzero(np.diff(months))
        ends = [*(firsts[changes + 1] - 1).tolist(), int(ts.size) - 1]
        for month, i in zip([*months[changes].tolist(), int(months[-1])], ends, strict=True):
            self._last[month] = float(equity[i])

    def finish(self, initial_balance: float) -> list[MonthReturn]:
        out = []
        previous = initial_balance
        for month in sorted(self._last):
            end = self._last[month]
            label = str(np.datetime64(month, "M"))
            out.append(MonthReturn(label, previous, end))
            previous = end
        return out
