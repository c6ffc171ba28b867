"""Execution venues: mock exchange, paper trading on a real book, live through ccxt."""

from perps_bot.venues.base import (
    OrderRejected,
    Venue,
    VenueFatal,
    VenuePosition,
    VenueSnapshot,
    VenueUnavailable,
)

__all__ = [
    "OrderRejected",
    "Venue",
    "VenueFatal",
    "VenuePosition",
    "VenueSnapshot",
    "VenueUnavailable",
]
