"""Market-data feeds: the seeded random walk, exchange data via ccxt, historical candles."""

from perps_bot.feeds.base import Feed, FeedError

__all__ = ["Feed", "FeedError"]
