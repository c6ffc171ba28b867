"""Putting books back: from a venue's or a store's figures (`restore`, rounded
through floats) or from a checkpoint's exact state (`state` / `restore_state`).

Rare paths (start-up, reconciliation, resume), kept apart from the booking of fills.
"""

import math
from collections.abc import Mapping
from decimal import Decimal, localcontext
from typing import Any

from perps_bot.ledger.errors import LedgerError
from perps_bot.ledger.liquidation import LiquidationRules
from perps_bot.ledger.position import DECIMAL_CONTEXT, QUANTUM, SymbolBook, to_decimal

_INF = math.inf


class Restoring(LiquidationRules):
    """Resume the books from stored or adopted state."""

    def restore(
        self,
        wallet_balance: float,
        positions: Mapping[str, tuple[float, float]],
        *,
        realized_pnl: float | None = None,
        fees_paid: float | None = None,
        funding_total: float | None = None,
    ) -> None:
        """Resume from stored state (or adopt a venue's): symbol -> (signed size, entry).

        Replaces wallet and positions (marks seen so far are kept; a position without one
        is marked at its entry; isolated margins are re-posted as entry notional /
        leverage). The realized PnL, fees and funding totals are kept as they are unless
        given, so a mid-run reconciliation does not reset reports or loss limits; the
        invariant's starting balance is re-based to wallet - realized + fees - funding,
        which absorbs any difference between the ledger's wallet and the one adopted.
        """
        numbers = [wallet_balance, realized_pnl, fees_paid, funding_total]
        if not all(x is None or math.isfinite(x) for x in numbers):
            raise LedgerError(f"restore: balance and totals must be finite, got {numbers!r}")
        for symbol, (size, entry) in positions.items():
            if not math.isfinite(size) or (size != 0 and not 0.0 < entry < _INF):
                raise LedgerError(
                    f"restore: position {symbol} needs a finite size and a positive entry, "
                    f"got size={size!r} entry={entry!r}"
                )
        with localcontext(DECIMAL_CONTEXT):
            self._wallet = to_decimal(wallet_balance)
            self._realized = _given_or(realized_pnl, self._realized)
            self._fees = _given_or(fees_paid, self._fees)
            self._funding = _given_or(funding_total, self._funding)
            self._base = (self._realized, self._fees, self._funding)
            self._initial = self._wallet - self._realized + self._fees - self._funding
            self._sync_floats()
            self._positions = {}
            self._books = {}
            for symbol in sorted(positions):
                size, entry = positions[symbol]
                if size == 0:
                    continue
                mark = self._marks.setdefault(symbol, float(entry))
                pos = self._positions[symbol] = self._new_position(symbol, mark)
                pos.size = to_decimal(size)
                pos.cost = abs(pos.size) * to_decimal(entry)
                if self._isolated:
                    pos.margin = (pos.cost / to_decimal(pos.leverage)).quantize(QUANTUM)
                book = self._books.setdefault(symbol, SymbolBook())
                book.cash = -pos.cost if size > 0 else pos.cost
                pos.refresh(self._isolated)
        if self._debug:
            self.check_invariant()

    _STATE = ("_positions", "_marks", "_books", "_liquidations", "_initial", "_wallet",
              "_realized", "_fees", "_funding", "_base")  # fmt: skip

    def state(self) -> tuple[object, ...]:
        """The exact books (Decimals, positions, marks, per-symbol totals), for a
        checkpoint: unlike restore(), nothing is rounded through floats, so a resumed
        paper run books every later fill exactly as an uninterrupted one. Live objects:
        the caller pickles them at once."""
        return tuple(getattr(self, name) for name in self._STATE)

    def restore_state(self, state: Any) -> None:
        for name, value in zip(self._STATE, state, strict=True):
            setattr(self, name, value)
        self._sync_floats()


def _given_or(value: float | None, current: Decimal) -> Decimal:
    return current if value is None else to_decimal(value)
