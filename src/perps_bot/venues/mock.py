"""The simulated venue of every paper mode (SPEC 4): the dev profile's mock exchange, the
backtester's venue, and paper trading on a real book in a canary dry run.

A thin asynchronous shell around `MatchingEngine`: all the simulation rules
(synthetic book, latency, slippage, partial fills, fees, reduce-only) live in
`venues.matching`, so every paper mode fills by the same ones. Prices come from the
market events the orchestrator passes in (random-walk quotes in dev, candles in a
backtest, real order books in a dry run); the venue keeps no clock and no position:
positions are the ledger's (`positions`), the one position book.

`on_market` is called for every event of a run; with no open or queued order it
returns an empty tuple after a dictionary check, so a backtest's 500k candles cost
almost nothing here.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from perps_bot.config.models import MockConfig
from perps_bot.domain import Candle, Fill, Instrument, MarketEvent, Order, OrderUpdate, PositionBook
from perps_bot.venues.base import VenuePosition, VenueSnapshot
from perps_bot.venues.fill_models import build_engine
from perps_bot.venues.match_rules import MatchingRules


class MockVenue:
    """Simulated exchange: seeded fills against the given book of positions (the ledger)."""

    name = "mock"
    needs_polling = False
    circuit_open = False
    reconnects = 0

    def __init__(
        self,
        mock: MockConfig,
        instruments: Mapping[str, Instrument],
        seed: int,
        account: PositionBook,
        books: Callable[[str], PositionBook] | None = None,
    ) -> None:
        """`account`: the positions of the whole account (the ledger, or the sum of the
        portfolios' ledgers); `books`: the ledger of a portfolio by id (default: the
        account's, for a run with one portfolio)."""
        self.engine = build_engine(
            MatchingRules.from_config(mock, instruments),
            seed,
            books if books is not None else (lambda _portfolio: account),
            id_prefix="mock",
        )
        self._positions = account
        self._last_ts = 0
        # called for every event of a run: the engine's method itself, not a wrapper
        self.on_market: Callable[[MarketEvent], Sequence[Fill]] = self.engine.on_market
        self.on_candle_part: Callable[[Candle, int, int, int | None], Sequence[Fill]] = (
            self.engine.on_candle_part
        )
        self.on_leg_rest: Callable[[Candle, int, int, int | None], Sequence[Fill]] = (
            self.engine.on_leg_rest
        )
        self.quiet: Callable[[str], bool] = self.engine.quiet
        self.updates: list[OrderUpdate] = self.engine.updates

    def match_through(self, view: Callable[[MarketEvent], MarketEvent]) -> None:
        """Match every event as `view` gives it (a live capture's replay: its books
        without the run's own resting orders, feeds.MatchingInput)."""
        on_market = self.engine.on_market
        self.on_market = lambda event: on_market(view(event))

    async def start(self) -> None:
        return None

    def state(self) -> tuple[object, ...]:
        """For a checkpoint (SPEC 9): the engine's orders and generator, the last time."""
        return (self.engine.state(), self._last_ts)

    def restore_state(self, state: Any) -> None:
        engine, last_ts = state
        self.engine.restore_state(engine)
        self._last_ts = int(last_ts)

    async def stop(self) -> None:
        """The run ended: what is still open is canceled (a paper order outlives nothing)."""
        ts = max([self._last_ts, *(o.updated_ts for o in self.engine.open_orders())])
        self.engine.cancel_all(ts, "end of run")

    async def submit(self, order: Order) -> Order:
        """Queue `order` (updated in place and returned); raises OrderRejected if invalid."""
        self._last_ts = max(self._last_ts, order.created_ts)
        return self.engine.submit(order)

    async def cancel(self, client_id: str, ts: int) -> None:
        """Cancel an open order; unknown or already closed ids are ignored."""
        self.engine.cancel(client_id, ts, "canceled by the strategy")

    def on_liquidation(self, symbol: str, ts: int, portfolio: str) -> None:
        self._last_ts = max(self._last_ts, ts)
        self.engine.cancel_all(ts, "position liquidated", symbol, portfolio)

    async def poll(self, now_ms: int) -> Sequence[Fill]:
        return ()

    async def exchange_fills(self, since_ms: int, symbols: Sequence[str]) -> Sequence[Fill]:
        """Every paper fill comes from this venue's own orders."""
        return ()

    def open_orders(self) -> list[Order]:
        return self.engine.open_orders()

    async def snapshot_to_adopt(self, since_ms: int, symbols: Sequence[str]) -> VenueSnapshot:
        """The snapshot: every paper fill comes from this venue's own orders."""
        return await self.snapshot()

    async def snapshot(self) -> VenueSnapshot:
        """The ledger's positions (a paper venue has no account of its own)."""
        book = self._positions
        return VenueSnapshot(
            balance=None,
            positions=[
                VenuePosition(s, book.position_size(s), book.entry_price(s)) for s in book.symbols()
            ],
            open_orders=self.engine.open_orders(),
        )
