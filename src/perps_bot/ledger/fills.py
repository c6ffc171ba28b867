"""Booking money into the ledger: executions and funding payments.

Both run under the 80-digit Decimal context (see `position.DECIMAL_CONTEXT`), so a
fill realizes exactly the cost basis it removes and the wallet stays equal to initial
+ realized - fees + funding. Liquidations book through the same `_book_fill`, so a
forced close is accounted exactly like a voluntary one.
"""

import math
from decimal import Decimal, localcontext

from perps_bot.domain import Fill, Side
from perps_bot.ledger.errors import LedgerError
from perps_bot.ledger.position import (
    DECIMAL_CONTEXT,
    QUANTUM,
    ZERO,
    Position,
    SymbolBook,
    to_decimal,
    to_decimal_kept,
)
from perps_bot.ledger.results import FillResult, FundingResult
from perps_bot.ledger.state import LedgerState

_INF = math.inf
_DIRECTIONS = {Side.BUY: 1, Side.SELL: -1}


class FillBooking(LedgerState):
    """Fills and funding: the only ways cash and positions change outside a restore."""

    def apply_fill(self, fill: Fill) -> FillResult:
        """Book one execution: realize the closed part, open the rest, pay the fee."""
        if not (0.0 < fill.size < _INF and 0.0 < fill.price < _INF):
            raise LedgerError(
                f"fill {fill.client_id!r} on {fill.symbol}: size and price must be positive "
                f"and finite, got size={fill.size!r} price={fill.price!r}"
            )
        if not math.isfinite(fill.fee):
            raise LedgerError(f"fill {fill.client_id!r} on {fill.symbol}: fee is {fill.fee!r}")
        direction = _DIRECTIONS.get(fill.side)
        if direction is None:
            raise LedgerError(f"fill {fill.client_id!r} on {fill.symbol}: side {fill.side!r}")
        with localcontext(DECIMAL_CONTEXT):
            result = self._book_fill(
                fill.symbol, direction, to_decimal_kept(fill.size), fill.price, fill.fee
            )
        if self._debug:
            self.check_invariant()
        return result

    def apply_funding(self, ts: int, symbol: str, rate: float, mark: float) -> FundingResult | None:
        """Settle funding on the position held now: cash flow -s * Q * mark * rate.

        None when flat. It does not move the mark (call `update_mark` for that, which
        is where a liquidation caused by the payment is detected).
        """
        if not (0.0 < mark < _INF) or not math.isfinite(rate):
            raise LedgerError(
                f"funding on {symbol} at {ts}: need a positive mark and a finite rate, "
                f"got mark={mark!r} rate={rate!r}"
            )
        pos = self._positions.get(symbol)
        if pos is None:
            return None
        with localcontext(DECIMAL_CONTEXT):
            payment = -pos.size * to_decimal(mark) * to_decimal(rate)
            self._wallet += payment
            self._funding += payment
            self._books[symbol].funding += payment
            if self._isolated:
                pos.margin += payment
            self._sync_floats()
            pos.refresh(self._isolated)
        if self._debug:
            self.check_invariant()
        return FundingResult(float(payment), pos.size_f, mark, rate)

    def _book_fill(
        self, symbol: str, direction: int, qty: Decimal, price_f: float, fee_f: float
    ) -> FillResult:
        """Apply a fill in Decimal (caller holds the Decimal context). The result reports
        the fee as given (the float of its Decimal is `fee_f` itself, and a Decimal's
        float goes through its string)."""
        price = to_decimal(price_f)
        fee = to_decimal(fee_f)
        book = self._books.get(symbol)
        if book is None:
            book = self._books[symbol] = SymbolBook()
        book.cash -= direction * qty * price
        pos = self._positions.get(symbol)
        flipped: Position | None = None
        closed = ZERO
        realized = ZERO
        if pos is not None and (pos.size > 0) != (direction > 0):
            held = abs(pos.size)
            closed = min(qty, held)
            if closed == held:
                removed, pos.margin = pos.cost, ZERO
            else:
                removed = (pos.cost * closed / held).quantize(QUANTUM)
                pos.margin -= (pos.margin * closed / held).quantize(QUANTUM)
            realized = (closed * price - removed) if pos.size > 0 else (removed - closed * price)
            pos.cost -= removed
            pos.size += direction * closed
            if pos.size == 0:
                del self._positions[symbol]
                flipped, pos = pos, None
        opened = qty - closed
        if opened > 0:
            if pos is None:
                mark = self._marks.setdefault(symbol, price_f)
                # a flip reopens the position it closed, reinserted last as a new one is
                pos = self._positions[symbol] = (
                    self._new_position(symbol, mark) if flipped is None else flipped.reopen(mark)
                )
            pos.size += direction * opened
            pos.cost += opened * price
            if self._isolated:
                pos.margin += (opened * price / to_decimal(pos.leverage)).quantize(QUANTUM)
        self._wallet += realized - fee
        self._realized += realized
        self._fees += fee
        book.realized += realized
        book.fees += fee
        self._sync_floats(funding=False)  # a fill pays no funding
        if pos is not None:
            pos.refresh(self._isolated)
        return FillResult(
            realized_pnl=float(realized),
            fee=float(fee_f),
            position_after=pos.size_f if pos is not None else 0.0,
            entry_after=pos.entry_f if pos is not None else 0.0,
            closed_size=float(closed),
            opened_size=float(opened),
        )
