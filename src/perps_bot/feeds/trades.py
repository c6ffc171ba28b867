"""Public trades of the exchange feed (SPEC 14): what other participants traded, for
the capture and for the queue fill model.

The feed asks for them every poll (ccxt `fetch_trades`) or streams them (ccxt.pro
`watch_trades`); either way the answers land here. `TradeTape` keeps, per symbol,
the trades newer than the last one it accepted (by exchange time, then trade id, so
a REST answer overlapping the previous one, a row listed twice in one answer or a
stream replaying its cache adds nothing twice) and hands them out with the symbol's
next book: a BookSnapshot carries the trades seen since the symbol's previous book.
Trades from before the feed started are history, not something the bot saw happen:
they are skipped.
"""

import math
from collections.abc import Sequence
from typing import Any

from perps_bot.domain import PublicTrade, Side

#: Pending trades kept per symbol while no book comes (bounded memory).
MAX_PENDING = 5_000


class TradeTape:
    def __init__(self, start_ms: int) -> None:
        self._start_ms = start_ms
        self._last: dict[str, tuple[int, int]] = {}
        self._pending: dict[str, list[PublicTrade]] = {}
        #: trades accepted since start, per symbol
        self.accepted: dict[str, int] = {}

    def add(self, symbol: str, answer: Any) -> bool:
        """Accept the new trades of a ccxt answer (a list of unified trades); False when
        the answer is not a list."""
        if not isinstance(answer, Sequence) or isinstance(answer, str | bytes):
            return False
        last = self._last.get(symbol, (self._start_ms - 1, -1))
        fresh: list[tuple[tuple[int, int], PublicTrade]] = []
        seen: set[object] = set()
        for row in answer:
            parsed = _parse(row)
            if parsed is None or parsed[0] <= last:
                continue
            # a row listed twice in one answer is one trade: the same id (or, without
            # an id, the same time, price, size and side)
            identity = parsed[0] if parsed[0][1] else parsed
            if identity not in seen:
                seen.add(identity)
                fresh.append(parsed)
        if fresh:
            fresh.sort(key=lambda item: item[0])
            self._last[symbol] = fresh[-1][0]
            pending = self._pending.setdefault(symbol, [])
            pending.extend(trade for _, trade in fresh)
            del pending[:-MAX_PENDING]
            self.accepted[symbol] = self.accepted.get(symbol, 0) + len(fresh)
        return True

    def take(self, symbol: str) -> tuple[PublicTrade, ...]:
        """The trades accepted since the symbol's last book (and forget them)."""
        pending = self._pending.pop(symbol, None)
        return tuple(pending) if pending else ()


def _parse(row: Any) -> tuple[tuple[int, int], PublicTrade] | None:
    if not isinstance(row, dict):
        return None
    ts, price, amount, side = (row.get(k) for k in ("timestamp", "price", "amount", "side"))
    if not isinstance(ts, int | float) or side not in ("buy", "sell"):
        return None
    try:
        price_f, qty_f = float(price), float(amount)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(price_f) and price_f > 0 and math.isfinite(qty_f) and qty_f > 0):
        return None
    raw_id = row.get("id")
    trade_id = int(raw_id) if isinstance(raw_id, str) and raw_id.isdigit() else 0
    key = (int(ts), trade_id)
    return key, PublicTrade(int(ts), price_f, qty_f, Side.BUY if side == "buy" else Side.SELL)
