"""The live venue (canary and prod): real orders through ccxt. Split by job: `venue`
(the Venue protocol), `requests` (retries, backoff, circuit breaker), `tracking`
(replies -> fills and lifecycle steps), `account` (balance, positions and open orders
for reconciliation), `errors` (error mapping and redaction of keys)."""

from perps_bot.venues.live.errors import redact
from perps_bot.venues.live.venue import LiveVenue

__all__ = ["LiveVenue", "redact"]
