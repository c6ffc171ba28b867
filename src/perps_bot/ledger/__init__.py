"""The account ledger (SPEC 3): exact Decimal books for positions, cash, fees and
funding, with margin and liquidation per Binance USDM one-way mode.

One `Ledger` serves the orchestrator, the risk gate (as `domain.AccountView`) and
the backtester, so every run books money the same way.
"""

from perps_bot.ledger.account import AccountBooks
from perps_bot.ledger.errors import LedgerError, LedgerInvariantError
from perps_bot.ledger.ledger import Ledger
from perps_bot.ledger.results import FillResult, FundingResult

__all__ = [
    "AccountBooks",
    "FillResult",
    "FundingResult",
    "Ledger",
    "LedgerError",
    "LedgerInvariantError",
]
