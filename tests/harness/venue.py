"""A scripted venue: fills what it is told, refuses with what it is told, and reports the
account it is given. Every call is logged in order, so tests can check the stages."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from perps_bot.domain import (
    Candle,
    Fill,
    Liquidity,
    MarketEvent,
    Order,
    OrderStatus,
    OrderUpdate,
    close_open,
    event_price,
    fill_of,
    record_fill,
    transition,
)
from perps_bot.venues import VenueSnapshot


@dataclass
class ScriptedVenue:
    """`fill_on_next_event`: market orders fill completely at the next event's price;
    otherwise orders stay open until the test fills them. `refusals`: exceptions raised by
    the next submits, in order. `snapshots` / `foreign`: what reconciliation reads (an
    exception in `snapshots`, or as `foreign`, is raised by that read)."""

    calls: list[str]
    fill_on_next_event: bool = True
    refusals: list[Exception] = field(default_factory=list)
    snapshots: list[VenueSnapshot | Exception] = field(default_factory=list)
    foreign: list[Fill] | Exception = field(default_factory=list)
    fill_lookups: list[int] = field(default_factory=list)  # since_ms of exchange_fills
    name: str = "scripted"
    needs_polling: bool = False
    circuit_open: bool = False
    reconnects: int = 0
    updates: list[OrderUpdate] = field(default_factory=list)
    submitted: list[Order] = field(default_factory=list)
    _open: dict[str, Order] = field(default_factory=dict)

    async def start(self) -> None:
        self.calls.append("venue.start")

    async def stop(self) -> None:
        self.calls.append("venue.stop")
        for order in list(self._open.values()):
            self._close(order, order.updated_ts, "end of run")

    async def submit(self, order: Order) -> Order:
        self.calls.append(f"venue.submit {order.client_id}")
        if self.refusals:
            error = self.refusals.pop(0)
            update = close_open(order, OrderStatus.REJECTED, order.created_ts, str(error))
            if update is not None:
                self.updates.append(update)
            raise error
        self.submitted.append(order)
        self.updates.append(transition(order, OrderStatus.ACCEPTED, order.created_ts, "accepted"))
        self._open[order.client_id] = order
        return order

    async def cancel(self, client_id: str, ts: int) -> None:
        order = self._open.get(client_id)
        if order is not None:
            self._close(order, ts, "canceled")

    def on_market(self, event: MarketEvent) -> Sequence[Fill]:
        self.calls.append(f"venue.on_market {event.ts}")
        price = event_price(event)
        if not self.fill_on_next_event or price is None:
            return ()
        return [self.fill(o, o.remaining, price, event.ts) for o in list(self._open.values())]

    def fill(self, order: Order, size: float, price: float, ts: int) -> Fill:
        self.updates.append(record_fill(order, size, price, ts))
        if order.status is OrderStatus.FILLED:
            del self._open[order.client_id]
        return fill_of(order, ts, size, price, 0.0, Liquidity.TAKER)

    def on_candle_part(
        self, candle: Candle, since: int, until: int, stamp: int | None
    ) -> Sequence[Fill]:
        return ()  # scripted fills come from on_market

    def on_leg_rest(
        self, candle: Candle, since: int, until: int, stamp: int | None
    ) -> Sequence[Fill]:
        return ()

    def quiet(self, symbol: str) -> bool:
        return False  # every event reaches on_market (the tests read `calls`)

    def on_liquidation(self, symbol: str, ts: int, portfolio: str) -> None:
        self.calls.append(f"venue.on_liquidation {symbol}")

    async def poll(self, now_ms: int) -> Sequence[Fill]:
        return ()

    async def exchange_fills(self, since_ms: int, symbols: Sequence[str]) -> Sequence[Fill]:
        self.calls.append(f"venue.exchange_fills {','.join(symbols)}")
        self.fill_lookups.append(since_ms)
        found, self.foreign = self.foreign, []
        if isinstance(found, Exception):
            raise found
        return found

    def open_orders(self) -> list[Order]:
        return list(self._open.values())

    async def snapshot_to_adopt(self, since_ms: int, symbols: Sequence[str]) -> VenueSnapshot:
        return await self.snapshot()

    async def snapshot(self) -> VenueSnapshot:
        self.calls.append("venue.snapshot")
        snap = self.snapshots.pop(0) if self.snapshots else VenueSnapshot(None)
        if isinstance(snap, Exception):
            raise snap
        return snap

    def _close(self, order: Order, ts: int, reason: str) -> None:
        update = close_open(order, OrderStatus.CANCELED, ts, reason)
        if update is not None:
            self.updates.append(update)
        self._open.pop(order.client_id, None)
