"""The read-only account view the risk gate and strategies see.

Defined here, in the domain, so that stages upstream of the ledger can read the
account without importing the ledger (data flows one way; imports follow it).
The ledger implements it.
"""

from typing import Protocol


class AccountView(Protocol):
    def position_size(self, symbol: str) -> float:
        """Signed position in base units (+long, -short, 0 flat)."""
        ...

    def entry_price(self, symbol: str) -> float:
        """Average entry price of the open position (0.0 when flat)."""
        ...

    def mark_price(self, symbol: str) -> float:
        """Latest mark price seen for `symbol` (0.0 if none yet)."""
        ...

    def equity(self) -> float:
        """Wallet balance plus unrealized PnL on mark."""
        ...

    def available_balance(self) -> float:
        """Equity not tied up as initial margin: what a new order may use."""
        ...

    def leverage(self, symbol: str) -> float:
        """The leverage configured for `symbol`."""
        ...


class PositionBook(Protocol):
    """The positions of the account, as the one position book (the ledger) holds them.
    Paper venues read positions through this instead of keeping a copy (SPEC 8)."""

    def position_size(self, symbol: str) -> float:
        """Signed position in base units (+long, -short, 0 flat)."""
        ...

    def entry_price(self, symbol: str) -> float:
        """Average entry price of the open position (0.0 when flat)."""
        ...

    def symbols(self) -> list[str]:
        """Symbols with an open position, sorted."""
        ...
