"""The mock exchange of the dev profile (SPEC 4), also the venue the backtester drives.

A thin asynchronous shell around `MatchingEngine`: all the simulation rules
(synthetic book, latency, slippage, partial fills, fees, reduce-only) live in
`venues.matching` so that paper trading on a real book uses exactly the same
ones. Prices come from the market events the orchestrator passes in (random
walk quotes in dev, candles in a backtest); the venue keeps no clock.

`on_market` is called for every event of a run; with no open or queued order it
returns an empty tuple after a dictionary check, so a backtest's 500k candles
cost almost nothing here.
"""

from collections.abc import Callable, Sequence

from perps_bot.config.models import FeesConfig, MockConfig
from perps_bot.domain import Fill, MarketEvent, Order
from perps_bot.venues.base import VenueSnapshot
from perps_bot.venues.matching import MatchingEngine, MatchingRules


class MockVenue:
    """Simulated exchange: seeded fills, positions from its own fills, no balance."""

    name = "mock"
    needs_polling = False

    def __init__(self, mock: MockConfig, fees: FeesConfig, seed: int) -> None:
        self.engine = MatchingEngine(MatchingRules.from_config(mock, fees), seed, id_prefix="mock")
        # called for every event of a run: the engine's method itself, not a wrapper
        self.on_market: Callable[[MarketEvent], Sequence[Fill]] = self.engine.on_market

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def submit(self, order: Order) -> Order:
        """Queue `order` (updated in place and returned); raises OrderRejected if invalid."""
        return self.engine.submit(order)

    async def cancel(self, client_id: str) -> None:
        """Cancel an open order; unknown or already closed ids are ignored."""
        self.engine.cancel(client_id)

    async def poll(self, now_ms: int) -> Sequence[Fill]:
        return ()

    def open_orders(self) -> list[Order]:
        return self.engine.open_orders()

    def position(self, symbol: str) -> float:
        """Signed net position from this venue's own fills."""
        return self.engine.position(symbol)

    async def snapshot(self) -> VenueSnapshot:
        return VenueSnapshot(
            balance=None,
            positions=self.engine.positions(),
            open_orders=self.engine.open_orders(),
        )
