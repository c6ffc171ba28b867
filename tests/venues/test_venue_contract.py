"""One contract for every venue (hummingbot-style connector suite): the same scenarios
run against the paper venue (matching engine, positions in the ledger) and the live
venue (real ccxt client against the loopback emulator). Orders reach both through the
instrument's rules, as the orchestrator sends them."""

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

import pytest

from perps_bot.config.models import AccountConfig, MarginMode, MockConfig
from perps_bot.domain import (
    Fill,
    Instrument,
    MarketEvent,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Quote,
    Side,
)
from perps_bot.ledger import Ledger
from perps_bot.venues import OrderRejected, Venue
from perps_bot.venues.live import LiveVenue
from perps_bot.venues.mock import MockVenue
from perps_emulator import EmulatorServer
from tests.live.live_helpers import (
    ClientFactory,
    FakeClock,
    FakeSleep,
    exchange_cfg,
    exchange_instruments,
)
from tests.venues.paper import rich_ledger

SYMBOL = "ETH-PERP"
FINAL = {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}


class Driver(Protocol):
    venue: Venue
    instrument: Instrument

    def price(self) -> float: ...

    async def settle(self) -> list[Fill]:
        """Let the venue act on what it holds; the fills it reports (booked)."""
        ...

    async def position(self) -> float: ...


class PaperDriver:
    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.ledger: Ledger = rich_ledger()
        self.venue = MockVenue(
            MockConfig(fill_probability=1.0), {SYMBOL: instrument}, 1, self.ledger
        )
        self.ts = 1_000

    def price(self) -> float:
        return 3_000.0

    async def settle(self) -> list[Fill]:
        self.ts += 1_000
        p = self.price()
        event: MarketEvent = Quote(self.ts, SYMBOL, p, p - 0.5, p + 0.5, p)
        fills = list(self.venue.on_market(event))
        for fill in fills:
            self.ledger.apply_fill(fill)
        return fills

    async def position(self) -> float:
        return self.ledger.position_size(SYMBOL)


class LiveDriver:
    def __init__(self, server: EmulatorServer, venue: LiveVenue, instrument: Instrument) -> None:
        self.server, self.venue, self.instrument = server, venue, instrument
        self.now = 10**13

    def price(self) -> float:
        return self.server.price("ETHUSDT")

    async def settle(self) -> list[Fill]:
        self.now += 10_000
        return list(await self.venue.poll(self.now))

    async def position(self) -> float:
        snap = await self.venue.snapshot()
        return sum(p.size for p in snap.positions if p.symbol == SYMBOL)


@pytest.fixture(params=["paper", pytest.param("live", marks=pytest.mark.integration)])
async def driver(
    request: pytest.FixtureRequest, emulator: EmulatorServer, make_client: ClientFactory
) -> AsyncIterator[Driver]:
    instruments = await exchange_instruments(emulator, make_client, [SYMBOL])
    if request.param == "paper":
        yield PaperDriver(instruments[SYMBOL])
        return
    cfg = exchange_cfg(emulator)
    account = AccountConfig(margin_mode=MarginMode.ISOLATED, default_leverage=2.0)
    venue = LiveVenue(
        make_client(cfg, private=True), cfg, account, instruments,
        clock=FakeClock(), sleep=FakeSleep(),
    )  # fmt: skip
    await venue.start()
    yield LiveDriver(emulator, venue, instruments[SYMBOL])
    await venue.stop()


_seq = 0


def order(d: Driver, side: Side, size: float, *, limit: float | None = None,
          reduce_only: bool = False) -> Order:  # fmt: skip
    global _seq
    _seq += 1
    kind = OrderType.LIMIT if limit is not None else OrderType.MARKET
    prepared = d.instrument.prepare(side, size, kind, limit, reduce_only, d.price())
    return Order(
        client_id=f"pbcontractx{_seq}", symbol=SYMBOL, side=side, size=prepared.size,
        order_type=kind, price=prepared.price, reduce_only=reduce_only, created_ts=1_000,
        correlation_id=f"c{_seq}", reason="contract",
    )  # fmt: skip


def updates_of(venue: Venue, client_id: str) -> list[OrderUpdate]:
    return [u for u in venue.updates if u.client_id == client_id]


async def test_market_order_is_accepted_then_filled_completely(driver: Driver) -> None:
    placed = order(driver, Side.BUY, 0.0126)  # floored to the 0.001 step by the rules
    await driver.venue.submit(placed)
    fills = await driver.settle()
    assert [(f.client_id, f.side, f.size) for f in fills] == [(placed.client_id, Side.BUY, 0.012)]
    steps = [u.status for u in updates_of(driver.venue, placed.client_id)]
    assert steps == [OrderStatus.ACCEPTED, OrderStatus.FILLED]
    assert placed.filled == pytest.approx(0.012) and placed.status is OrderStatus.FILLED
    assert await driver.position() == pytest.approx(0.012)
    assert driver.venue.open_orders() == []


async def test_resting_limit_order_stays_open_until_canceled(driver: Driver) -> None:
    resting = order(driver, Side.BUY, 0.01, limit=driver.price() * 0.8)
    await driver.venue.submit(resting)
    assert await driver.settle() == []
    assert [o.client_id for o in driver.venue.open_orders()] == [resting.client_id]
    assert resting.status is OrderStatus.ACCEPTED
    await driver.venue.cancel(resting.client_id, 5_000)
    await driver.venue.cancel(resting.client_id, 6_000)  # a second cancel changes nothing
    assert resting.status is OrderStatus.CANCELED
    assert [u.status for u in updates_of(driver.venue, resting.client_id)] == [
        OrderStatus.ACCEPTED,
        OrderStatus.CANCELED,
    ]
    assert driver.venue.open_orders() == []


async def test_reduce_only_with_nothing_to_reduce_never_executes(driver: Driver) -> None:
    exit_order = order(driver, Side.SELL, 0.01, reduce_only=True)
    with contextlib.suppress(OrderRejected):  # the exchange refuses it at once;
        await driver.venue.submit(exit_order)  # a paper venue cancels it when it acts
    assert await driver.settle() == []
    assert exit_order.status in FINAL - {OrderStatus.FILLED}
    assert exit_order.filled == 0.0 and exit_order.status_reason
    assert await driver.position() == 0.0


async def test_reduce_only_exit_is_clipped_to_the_position(driver: Driver) -> None:
    await driver.venue.submit(order(driver, Side.BUY, 0.02))
    await driver.settle()
    exit_order = order(driver, Side.SELL, 0.05, reduce_only=True)
    try:
        await driver.venue.submit(exit_order)
    except OrderRejected as refused:  # pragma: no cover - a venue may refuse instead
        pytest.fail(f"a reduce-only exit larger than the position was refused: {refused}")
    fills = await driver.settle()
    assert sum(f.size for f in fills if f.client_id == exit_order.client_id) == pytest.approx(0.02)
    assert exit_order.status in FINAL and exit_order.filled == pytest.approx(0.02)
    assert await driver.position() == pytest.approx(0.0)


async def test_every_update_is_a_lifecycle_step_with_a_reason(driver: Driver) -> None:
    await driver.venue.submit(order(driver, Side.BUY, 0.01))
    resting = order(driver, Side.SELL, 0.01, limit=driver.price() * 1.5)
    await driver.venue.submit(resting)
    await driver.settle()
    await driver.venue.cancel(resting.client_id, 9_000)
    seen: dict[str, Any] = {}
    for update in driver.venue.updates:
        assert update.reason, update
        seen.setdefault(update.client_id, []).append(update.status)
    for statuses in seen.values():
        assert statuses[0] is OrderStatus.ACCEPTED and statuses[-1] in FINAL
