"""The account of a run with several portfolios (SPEC 10): the sum of their ledgers.

Each portfolio keeps its own exact ledger (its cash, positions, PnL, fees, funding), so
one portfolio's loss never touches another's capital; the account is only ever read,
as their sum: what the exchange account holds, what account-level caps limit, what
reconciliation compares with the exchange and what the console shows. With one
portfolio the account is that portfolio's ledger.
"""

from collections.abc import Collection, Sequence

from perps_bot.ledger.ledger import Ledger


class AccountBooks:
    """Read-only sums over the portfolios' ledgers (implements AccountView and
    PositionBook for the account)."""

    def __init__(self, ledgers: Sequence[Ledger]) -> None:
        self.ledgers = list(ledgers)

    def position_size(self, symbol: str) -> float:
        return sum(ledger.position_size(symbol) for ledger in self.ledgers)

    def entry_price(self, symbol: str) -> float:
        """Size-weighted entry of the net position (0.0 when flat or hedged to zero)."""
        net = self.position_size(symbol)
        if net == 0.0:
            return 0.0
        cost = sum(lg.position_size(symbol) * lg.entry_price(symbol) for lg in self.ledgers)
        return cost / net

    def mark_price(self, symbol: str) -> float:
        return max((ledger.mark_price(symbol) for ledger in self.ledgers), default=0.0)

    def equity(self) -> float:
        return sum(ledger.equity() for ledger in self.ledgers)

    def available_balance(self) -> float:
        return sum(ledger.available_balance() for ledger in self.ledgers)

    def leverage(self, symbol: str) -> float:
        return max((ledger.leverage(symbol) for ledger in self.ledgers), default=1.0)

    def symbols(self) -> list[str]:
        return sorted({s for ledger in self.ledgers for s in ledger.symbols()})

    def wallet_balance(self) -> float:
        return sum(ledger.wallet_balance() for ledger in self.ledgers)

    def initial_balance(self) -> float:
        return sum(ledger.initial_balance() for ledger in self.ledgers)

    def unrealized_pnl(self) -> float:
        return sum(ledger.unrealized_pnl() for ledger in self.ledgers)

    def unrealized_line(self, symbols: Collection[str]) -> tuple[float, dict[str, float]]:
        """The sum of the ledgers' `Ledger.unrealized_line`."""
        lines = [ledger.unrealized_line(symbols) for ledger in self.ledgers]
        slopes = {s: sum(held.get(s, 0.0) for _, held in lines) for s in symbols}
        return sum(b for b, _ in lines), slopes

    def realized_pnl(self) -> float:
        return sum(ledger.realized_pnl() for ledger in self.ledgers)

    def fees_paid(self) -> float:
        return sum(ledger.fees_paid() for ledger in self.ledgers)

    def funding_total(self) -> float:
        return sum(ledger.funding_total() for ledger in self.ledgers)

    def margin_required(self, symbol: str, new_size: float, price: float) -> float:
        return self.ledgers[0].margin_required(symbol, new_size, price)
