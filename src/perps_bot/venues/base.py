"""The execution-venue seam: the orchestrator talks to mock, paper-on-real-book and
live venues through this one protocol and never learns which one it has. Every
attribute the orchestrator reads is declared here (no probing with getattr)."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from perps_bot.domain import Candle, DenialReason, Fill, MarketEvent, Order, OrderUpdate


class OrderRejected(Exception):
    """The venue refused an order; `reason` maps it onto a risk-style denial code.
    `answered`: the venue itself said no (False: the request never got an answer, its
    retries used up, or it was never sent; the capture then records no round trip)."""

    def __init__(self, reason: DenialReason | None, detail: str, *, answered: bool = True) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.answered = answered


class VenueUnavailable(Exception):
    """The venue cannot be reached now (network, rate limit, circuit breaker open)."""


class VenueFatal(Exception):
    """The venue cannot be used at all (authentication, configuration): stop the bot."""


class FillsOutOfReach(Exception):
    """The exchange's fills since a time cannot all be read (older than the exchange
    keeps, or more than one reconciliation books): booking part of them would be wrong
    books; the bot stops trading until an operator looks."""


class TakenAtStart(NamedTuple):
    """What an order found open (an earlier run's) had executed when a live start took
    the account: its executed quantity and quote cost, which the positions taken hold,
    and when they were taken. What it executes beyond is the new run's."""

    filled: float
    cost: float
    at: int


@dataclass(slots=True)
class VenuePosition:
    symbol: str
    size: float  # signed
    entry_price: float


@dataclass(slots=True)
class VenueSnapshot:
    """What the venue says the account holds; the orchestrator reconciles against it.
    `fills`: executions of the venue's own orders that the positions include and that
    were not handed out by `poll` yet (a live venue learns them while reading the
    account); they are handed out here, once, and booked before the books are compared."""

    balance: float | None
    positions: list[VenuePosition] = field(default_factory=list)
    open_orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)


class Venue(Protocol):
    name: str
    #: True when fills arrive asynchronously and must be pulled with `poll`.
    needs_polling: bool

    @property
    def circuit_open(self) -> bool:
        """True while the venue's circuit breaker refuses requests (the risk gate denies)."""
        ...

    @property
    def reconnects(self) -> int:
        """Grows by one each time the venue is reachable again after failures: reconcile."""
        ...

    #: Order lifecycle changes (SPEC 8) since the owner last drained the list; the
    #: orchestrator takes them after every call into the venue.
    updates: list[OrderUpdate]

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Stop the venue. Paper venues cancel what is still open ("end of run"); a live
        venue leaves its orders on the exchange (the next start reconciles them)."""
        ...

    async def submit(self, order: Order) -> Order:
        """Accept an order (raises OrderRejected / VenueUnavailable). Simulated venues
        queue it until the order latency has passed; fills come from on_market."""
        ...

    async def cancel(self, client_id: str, ts: int) -> None: ...

    def on_market(self, event: MarketEvent) -> Sequence[Fill]:
        """Feed a market event to the venue; simulated venues match queued and resting
        orders against it and return the fills (live venues return nothing)."""
        ...

    def on_candle_part(
        self, candle: Candle, since: int, until: int, stamp: int | None
    ) -> Sequence[Fill]:
        """Match the points of `candle`'s price path whose time is in [since, until),
        fills stamped at their point's time (a candle a funding settlement splits:
        orchestrator.long_candles), or at `stamp` unless it is None (a candle walked point by
        point for its mark's extremes, whose fills carry its close time as any
        candle's); live venues return nothing."""
        ...

    def on_leg_rest(
        self, candle: Candle, since: int, until: int, stamp: int | None
    ) -> Sequence[Fill]:
        """After an `on_candle_part` with fills: the trigger orders sent since (an entry's
        protection) matched against the rest of the move to its point, from the price
        its fills were made at on (venues.triggers); live venues return nothing."""
        ...

    def quiet(self, symbol: str) -> bool:
        """True when market data of `symbol` cannot make anything happen here (a
        simulated venue with no order of the symbol queued or resting): the orchestrator
        may then skip `on_market` for a stretch of its candles. Live venues: False."""
        ...

    def on_liquidation(self, symbol: str, ts: int, portfolio: str) -> None:
        """The ledger of `portfolio` liquidated `symbol` (paper venues only): cancel that
        portfolio's open orders of the symbol, as an exchange does when it liquidates."""
        ...

    async def poll(self, now_ms: int) -> Sequence[Fill]:
        """Pull fills and order updates from a live venue (simulated: nothing)."""
        ...

    async def exchange_fills(self, since_ms: int, symbols: Sequence[str]) -> Sequence[Fill]:
        """Fills since `since_ms` on `symbols` that no order of this venue explains (a
        live exchange's own liquidations, trades of orders placed elsewhere); paper
        venues have none. Reconciliation books them."""
        ...

    def open_orders(self) -> list[Order]: ...

    async def snapshot(self) -> VenueSnapshot:
        """Balance, positions and open orders as the venue knows them (for reconciliation),
        with the fills of its own orders those positions hold that `poll` has not handed
        out yet (handed out with the snapshot instead)."""
        ...

    async def snapshot_to_adopt(self, since_ms: int, symbols: Sequence[str]) -> VenueSnapshot:
        """`snapshot` for books that take the account whole (a live start): the fills on
        `symbols` from `since_ms` that its positions hold are never handed out by
        `exchange_fills` (adopted with the positions, they would count twice)."""
        ...
