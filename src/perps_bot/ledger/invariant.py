"""The ledger's invariant: the books balance to the last Decimal digit.

Checked after every change when `debug_invariants` is on (tests, the crash tests'
paper runs); it is what makes a drift of the float mirrors or a lost cent loud.
"""

from decimal import localcontext
from typing import NoReturn

from perps_bot.ledger.errors import LedgerInvariantError
from perps_bot.ledger.position import DECIMAL_CONTEXT, ZERO, Position, to_decimal
from perps_bot.ledger.restore import Restoring

DRIFT_TOLERANCE = 1e-9  # max |equity - invariant| relative to equity (or to 1.0)


class InvariantChecks(Restoring):
    """`check_invariant` and its per-position part."""

    def check_invariant(self) -> None:
        """Raise LedgerInvariantError unless the books balance.

        Exact (Decimal): wallet == initial + realized - fees + funding; per-symbol
        totals add up to the account totals; per symbol, realized PnL == trade cash
        flow + signed cost basis of the open position (no PnL created or lost by
        averaging, partial closes or flips). Float: caches equal the Decimal state,
        and equity matches initial + realized - fees + funding + unrealized within
        DRIFT_TOLERANCE of equity.
        """
        with localcontext(DECIMAL_CONTEXT):
            expected_wallet = self._initial + self._realized - self._fees + self._funding
            exact_totals = (self._wallet, self._realized, self._fees, self._funding)
            if self._wallet != expected_wallet:
                _fail(f"wallet {self._wallet} != initial+realized-fees+funding {expected_wallet}")
            cached = (self._wallet_f, self._realized_f, self._fees_f, self._funding_f)
            if cached != tuple(float(x) for x in exact_totals):
                _fail("float caches of the account totals are stale")
            books = self._books.values()
            sums = (
                self._base[0] + sum((b.realized for b in books), ZERO),
                self._base[1] + sum((b.fees for b in books), ZERO),
                self._base[2] + sum((b.funding for b in books), ZERO),
            )
            if sums != (self._realized, self._fees, self._funding):
                _fail(f"per-symbol totals {sums} != account totals")
            for symbol, book in self._books.items():
                pos = self._positions.get(symbol)
                signed_cost = ZERO if pos is None else (pos.cost if pos.size > 0 else -pos.cost)
                if book.realized != book.cash + signed_cost:
                    _fail(f"{symbol}: realized {book.realized} != trade cash + cost basis")
            exact_upnl = ZERO
            for symbol, pos in self._positions.items():
                self._check_position(symbol, pos)
                exact_upnl += pos.size * to_decimal(pos.mark) - (
                    pos.cost if pos.size > 0 else -pos.cost
                )
            expected_equity = float(expected_wallet + exact_upnl)
        equity = self.equity()
        if abs(equity - expected_equity) > DRIFT_TOLERANCE * max(1.0, abs(expected_equity)):
            _fail(f"equity {equity!r} drifted from the invariant {expected_equity!r}")

    def _check_position(self, symbol: str, pos: Position) -> None:
        if pos.size == 0 or pos.cost <= 0 or symbol not in self._books:
            _fail(f"{symbol}: open position with size {pos.size} and cost {pos.cost}")
        if (pos.size_f, pos.entry_f, pos.margin_f) != (
            float(pos.size),
            float(pos.cost / abs(pos.size)),
            float(pos.margin),
        ):
            _fail(f"{symbol}: float caches are stale")
        if not self._isolated and pos.margin != 0:
            _fail(f"{symbol}: isolated margin booked in cross mode")
        if pos.mark != self._marks.get(symbol):
            _fail(f"{symbol}: position mark {pos.mark!r} != mark {self._marks.get(symbol)!r}")


def _fail(message: str) -> NoReturn:
    raise LedgerInvariantError(f"ledger invariant broken: {message}")
