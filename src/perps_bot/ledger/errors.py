"""Ledger exceptions; messages are one line (the CLI prints them as they are)."""

from perps_bot.domain import PerpsBotError


class LedgerError(PerpsBotError, ValueError):
    """Input the ledger cannot book: a non-positive size or price, a NaN, a bad restore."""


class LedgerInvariantError(LedgerError):
    """The books do not balance: a bug, never a market condition. Stop the run."""
