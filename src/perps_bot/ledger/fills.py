"""Booking money into the ledger: executions and funding payments.

Both run under the 80-digit Decimal context (see `position.DECIMAL_CONTEXT`), so a
fill realizes exactly the cost basis it removes and the wallet stays equal to initial
+ realized - fees + funding. Liquidations book through the same `_book_fill`, so a
forced close is accounted exactly like a voluntary one.
"""

import math
from decimal import Decimal, getcontext, localcontext, setcontext

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
        # the context itself, not `localcontext`'s copy of it (a third of a microsecond
        # more per fill): its flags may collect, its precision and traps stay as set
        outer = getcontext()
        setcontext(DECIMAL_CONTEXT)
        try:
            size = float(fill.size)
            result = self._book_fill(
                fill.symbol, direction, to_decimal_kept(size), size, fill.price, fill.fee
            )
        finally:
            setcontext(outer)
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
        self, symbol: str, direction: int, qty: Decimal, qty_f: float, price_f: float, fee_f: float
    ) -> FillResult:
        """Apply a fill in Decimal (caller holds the Decimal context); `qty_f` is the
        float of `qty`. The Decimal arithmetic is the truth; the floats it reports and
        mirrors are the floats of those Decimals, taken from a float each one equals
        where there is one (the fee as given, the fill's size, the held size's mirror,
        the price a new position's entry is): a Decimal's float goes through its
        string, and a fill used to take eight of them and a division."""
        price = to_decimal(price_f)
        fee = to_decimal(fee_f)
        book = self._books.get(symbol)
        if book is None:
            book = self._books[symbol] = SymbolBook()
        book.cash -= direction * qty * price
        pos = self._positions.get(symbol)
        flipped: Position | None = None
        closed, closed_f = ZERO, 0.0
        realized = ZERO
        closing = pos is not None and (pos.size > 0) != (direction > 0)
        if closing and pos is not None:
            held = abs(pos.size)
            closed = min(qty, held)
            if closed == held:
                removed, pos.margin = pos.cost, ZERO
                closed_f = pos.abs_f
            else:
                removed = (pos.cost * closed / held).quantize(QUANTUM)
                pos.margin -= (pos.margin * closed / held).quantize(QUANTUM)
                closed_f = qty_f
            realized = (closed * price - removed) if pos.size > 0 else (removed - closed * price)
            pos.cost -= removed
            pos.size += direction * closed
            if pos.size == 0:
                del self._positions[symbol]
                flipped, pos = pos, None
        opened = qty - closed
        opened_f = 0.0
        if opened > 0:
            opened_f = float(opened) if closing else qty_f
            if pos is None:
                pos = self._open(symbol, flipped, direction, opened, price, price_f)
                pos.mirror(direction * opened_f, direction > 0, price_f, self._isolated)
            else:
                self._add(pos, direction, opened, price)
                pos.refresh(self._isolated)
        elif pos is not None:
            pos.refresh(self._isolated)
        self._wallet += realized - fee
        self._realized += realized
        self._fees += fee
        book.realized += realized
        book.fees += fee
        self._sync_floats(funding=False, realized=closing)  # a fill pays no funding
        return FillResult(
            realized_pnl=float(realized) if closing else 0.0,
            fee=float(fee_f),
            position_after=pos.size_f if pos is not None else 0.0,
            entry_after=pos.entry_f if pos is not None else 0.0,
            closed_size=closed_f,
            opened_size=opened_f,
        )

    def _open(
        self,
        symbol: str,
        flipped: Position | None,
        direction: int,
        opened: Decimal,
        price: Decimal,
        price_f: float,
    ) -> Position:
        """A new position of `opened` at `price` (a flip reopens the one it closed,
        reinserted last as a new one is). Its entry is the price itself: the cost over
        the size, `opened * price / opened`, is exact at 80 digits."""
        mark = self._marks.setdefault(symbol, price_f)
        pos = self._positions[symbol] = (
            self._new_position(symbol, mark) if flipped is None else flipped.reopen(mark)
        )
        self._add(pos, direction, opened, price)
        return pos

    def _add(self, pos: Position, direction: int, opened: Decimal, price: Decimal) -> None:
        """`opened` more of the position at `price` (the Decimal truth only)."""
        pos.size += direction * opened
        pos.cost += opened * price
        if self._isolated:
            pos.margin += (opened * price / to_decimal(pos.leverage)).quantize(QUANTUM)
