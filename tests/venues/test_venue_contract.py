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
    MarkPrice,
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

    async def move(self, price: float) -> None:
        """Trade the market to `price` (the next `settle` acts on it)."""
        ...

    async def move_mark(self, mark: float) -> None:
        """Move the mark price alone: the last price and the book stay."""
        ...

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
        self._price = self._mark = 3_000.0

    def price(self) -> float:
        return self._price

    async def move(self, price: float) -> None:
        self._price = self._mark = price

    async def move_mark(self, mark: float) -> None:
        self._mark = mark
        self.ts += 1_000
        fills = list(self.venue.on_market(MarkPrice(self.ts, SYMBOL, mark)))
        assert not fills, "a mark update trades nothing by itself"

    async def settle(self) -> list[Fill]:
        self.ts += 1_000
        p = self.price()
        event: MarketEvent = Quote(self.ts, SYMBOL, p, p - 0.5, p + 0.5, self._mark)
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

    async def move(self, price: float) -> None:
        self.server.set_price("ETHUSDT", price)

    async def move_mark(self, mark: float) -> None:
        self.server.set_mark("ETHUSDT", mark)

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


def stop_order(d: Driver, side: Side, size: float, trigger: float) -> Order:
    """A protective stop as the orchestrator's protector sends it: reduce-only, market
    once the price reaches its trigger (on the tick grid)."""
    global _seq
    _seq += 1
    return Order(
        client_id=f"pbcontractx{_seq}", symbol=SYMBOL, side=side, size=size,
        order_type=OrderType.STOP_MARKET, price=None, reduce_only=True, created_ts=1_000,
        correlation_id=f"c{_seq}", reason="contract stop",
        trigger_price=d.instrument.round_price(trigger, side),
    )  # fmt: skip


def fills_of(fills: list[Fill], placed: Order) -> list[Fill]:
    return [f for f in fills if f.client_id == placed.client_id]


async def test_resting_limit_fills_at_its_price_or_better_once_traded_through(
    driver: Driver,
) -> None:
    start = driver.price()
    resting = order(driver, Side.BUY, 0.01, limit=start * 0.95)
    await driver.venue.submit(resting)
    assert await driver.settle() == []
    await driver.move(start * 0.90)
    fills = fills_of(await driver.settle(), resting)
    assert sum(f.size for f in fills) == pytest.approx(0.01)
    assert all(f.price <= resting.price + 1e-9 for f in fills)  # type: ignore[operator]
    assert resting.status is OrderStatus.FILLED and resting.filled == pytest.approx(0.01)
    assert await driver.position() == pytest.approx(0.01)
    assert driver.venue.open_orders() == []


async def test_marketable_limit_fills_at_once_no_worse_than_its_limit(driver: Driver) -> None:
    crossing = order(driver, Side.BUY, 0.01, limit=driver.price() * 1.02)
    await driver.venue.submit(crossing)
    fills = fills_of(await driver.settle(), crossing)
    assert sum(f.size for f in fills) == pytest.approx(0.01)
    assert all(f.price <= crossing.price + 1e-9 for f in fills)  # type: ignore[operator]
    assert crossing.status is OrderStatus.FILLED


async def test_one_market_order_can_turn_a_long_into_a_short(driver: Driver) -> None:
    await driver.venue.submit(order(driver, Side.BUY, 0.01))
    await driver.settle()
    flip = order(driver, Side.SELL, 0.03)
    await driver.venue.submit(flip)
    fills = fills_of(await driver.settle(), flip)
    assert sum(f.size for f in fills) == pytest.approx(0.03)
    assert await driver.position() == pytest.approx(-0.02)


async def test_a_filled_order_cannot_be_canceled(driver: Driver) -> None:
    placed = order(driver, Side.BUY, 0.01)
    await driver.venue.submit(placed)
    await driver.settle()
    await driver.venue.cancel(placed.client_id, 9_000)
    assert placed.status is OrderStatus.FILLED and placed.filled == pytest.approx(0.01)
    statuses = [u.status for u in updates_of(driver.venue, placed.client_id)]
    assert statuses == [OrderStatus.ACCEPTED, OrderStatus.FILLED]
    assert await driver.position() == pytest.approx(0.01)


async def test_stop_market_waits_for_its_trigger_then_closes_the_position(
    driver: Driver,
) -> None:
    start = driver.price()
    await driver.venue.submit(order(driver, Side.BUY, 0.01))
    await driver.settle()
    stop = stop_order(driver, Side.SELL, 0.01, start * 0.95)
    await driver.venue.submit(stop)
    await driver.move(start * 0.97)  # above the trigger: nothing happens
    assert fills_of(await driver.settle(), stop) == []
    assert [o.client_id for o in driver.venue.open_orders()] == [stop.client_id]
    await driver.move(start * 0.93)
    fills = fills_of(await driver.settle(), stop)
    assert sum(f.size for f in fills) == pytest.approx(0.01)
    assert stop.status is OrderStatus.FILLED
    assert await driver.position() == pytest.approx(0.0)
    assert driver.venue.open_orders() == []


async def test_fees_follow_the_instrument_rates(driver: Driver) -> None:
    """Taker for an order that takes liquidity, maker for one that rested: the paper
    venue charges what the exchange charges, or paper PnL drifts from live."""
    start = driver.price()
    taker = order(driver, Side.BUY, 0.01)
    await driver.venue.submit(taker)
    taken = fills_of(await driver.settle(), taker)
    maker = order(driver, Side.SELL, 0.01, limit=start * 1.05)
    await driver.venue.submit(maker)
    await driver.settle()
    await driver.move(start * 1.10)
    made = fills_of(await driver.settle(), maker)
    rates = driver.instrument
    for fills, bps in ((taken, rates.taker_bps), (made, rates.maker_bps)):
        assert fills
        for f in fills:
            assert f.fee == pytest.approx(f.size * f.price * bps / 10_000, rel=1e-6, abs=1e-9)


async def test_a_reduce_only_limit_never_opens_a_position_once_flat(driver: Driver) -> None:
    """A take-profit limit left resting after the position was closed by another order
    must not fill into a new position when the price later reaches it."""
    start = driver.price()
    await driver.venue.submit(order(driver, Side.BUY, 0.01))
    await driver.settle()
    target = order(driver, Side.SELL, 0.01, limit=start * 1.05, reduce_only=True)
    await driver.venue.submit(target)
    await driver.venue.submit(order(driver, Side.SELL, 0.01))
    await driver.settle()
    assert await driver.position() == pytest.approx(0.0)
    await driver.move(start * 1.10)
    assert fills_of(await driver.settle(), target) == []
    assert await driver.position() == pytest.approx(0.0)
    assert target.filled == 0.0
    assert target.status in FINAL - {OrderStatus.FILLED} and target.status_reason
    assert driver.venue.open_orders() == []


async def test_a_stop_triggers_on_the_mark_price_as_on_the_exchange(driver: Driver) -> None:
    """The live venue's stops trigger on the mark (workingType=MARK_PRICE): a paper stop
    that waited for the last price would hold a position live has already closed."""
    start = driver.price()
    await driver.venue.submit(order(driver, Side.BUY, 0.01))
    await driver.settle()
    stop = stop_order(driver, Side.SELL, 0.01, start * 0.95)
    await driver.venue.submit(stop)
    await driver.settle()
    await driver.move_mark(start * 0.93)  # the last price stays above the trigger
    fills = fills_of(await driver.settle(), stop)
    assert sum(f.size for f in fills) == pytest.approx(0.01)
    assert stop.status is OrderStatus.FILLED
    assert await driver.position() == pytest.approx(0.0)
