"""Execution venues: mock exchange, paper trading on a real book, live through ccxt."""

from perps_bot.venues.base import (
    FillsOutOfReach,
    OrderRejected,
    TakenAtStart,
    Venue,
    VenueFatal,
    VenuePosition,
    VenueSnapshot,
    VenueUnavailable,
)

__all__ = [
    "FillsOutOfReach",
    "OrderRejected",
    "TakenAtStart",
    "Venue",
    "VenueFatal",
    "VenuePosition",
    "VenueSnapshot",
    "VenueUnavailable",
]
