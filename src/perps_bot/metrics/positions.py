"""Positions still open when the run ended, and a buy-and-hold benchmark.

Open positions are not trades (trades.csv has closed round trips only), yet they
are part of the result: `return_pct` marks them to market. The report lists each
one with its entry, the last sampled price and the unrealized PnL at that price,
so a run that "made money" only on paper says so.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from perps_bot.domain import iso_utc
from perps_bot.metrics.formatting import num
from perps_bot.metrics.trade_records import OpenTrade
from perps_bot.storage import SymbolSeries

_FLAT = 1e-12


@dataclass(frozen=True, slots=True)
class OpenPosition:
    symbol: str
    side: str
    size: float
    entry_price: float
    open_ts: int | None  # None: carried in from before the run
    last_price: float | None  # last sampled price (None if the run sampled none)

    @property
    def unrealized_pnl(self) -> float | None:
        if self.last_price is None:
            return None
        sign = 1.0 if self.side == "long" else -1.0
        return sign * self.size * (self.last_price - self.entry_price)

    def as_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "side": self.side,
            "size": num(self.size),
            "entry_price": num(self.entry_price),
            "open_time": None if self.open_ts is None else iso_utc(self.open_ts),
            "last_price": num(self.last_price),
            "unrealized_pnl": num(self.unrealized_pnl),
        }


def open_positions(
    positions: Mapping[str, tuple[float, float]],
    open_trades: Mapping[str, OpenTrade],
    prices: Mapping[str, SymbolSeries],
) -> list[OpenPosition]:
    """Non-flat final positions (the store's positions table), by symbol."""
    out = []
    for symbol, (size, entry) in sorted(positions.items()):
        if abs(size) <= _FLAT:
            continue
        trade = open_trades.get(symbol)
        series = prices.get(symbol)
        last = float(series.price[-1]) if series is not None and len(series.ts) else None
        out.append(
            OpenPosition(
                symbol=symbol,
                side="long" if size > 0 else "short",
                size=abs(size),
                entry_price=entry,
                open_ts=None if trade is None else trade.open_ts,
                last_price=last,
            )
        )
    return out


def buy_and_hold(
    prices: Mapping[str, SymbolSeries], initial_balance: float
) -> tuple[list[int], list[float]]:
    """Equity of holding every symbol from its first sampled price, equal weights, no fees
    or funding, on the time grid of the union of samples (a symbol not priced yet counts
    as cash)."""
    if not prices:
        return [], []
    grid = np.unique(np.concatenate([s.ts for s in prices.values()]))
    ratio = np.zeros(grid.size)
    for series in prices.values():
        idx = np.searchsorted(series.ts, grid, side="right") - 1
        first = float(series.price[0])
        seen = idx >= 0
        ratio += np.where(seen, series.price[np.maximum(idx, 0)] / first, 1.0)
    values = initial_balance * ratio / len(prices)
    return [int(t) for t in grid], [float(v) for v in values]
