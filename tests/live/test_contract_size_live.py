"""A market whose contract is not one base unit (ccxt's `contractSize`): the bot sizes
orders, fills and positions in base units, the exchange's orders, trades and positions
count contracts. The live venue sent a size in base units as the number of contracts
and read the executed contracts back as base units, while it read the exchange's
position in base units (contracts times the contract size): a fill of 0.02 ETH booked
while the exchange held 0.01, so reconciliation found the books wrong after every trade.

The emulator plays Binance, whose contracts are one base unit; the tests give the
loaded market a contract of half an ETH, as an exchange that publishes one does."""

from typing import Any

import pytest

from perps_bot.config.models import FeesConfig
from perps_bot.domain import Order, OrderType, Side
from perps_bot.instruments import InstrumentCatalog, catalog_from_markets
from perps_bot.venues.live import LiveVenue
from perps_emulator import EmulatorServer
from tests.live.live_helpers import (
    ACCOUNT,
    ClientFactory,
    FakeClock,
    FakeSleep,
    exchange_cfg,
)

pytestmark = pytest.mark.integration

ETH = "ETH/USDT:USDT"
CONTRACT = 0.5  # ETH per contract
FAR_FUTURE = 10**13


async def _venue(
    server: EmulatorServer, make_client: ClientFactory
) -> tuple[LiveVenue, InstrumentCatalog, FakeClock]:
    config = exchange_cfg(server)
    client = make_client(config, private=True)
    markets = await client.load_markets()
    client.market(ETH)["contractSize"] = CONTRACT
    catalog = catalog_from_markets(markets, ["ETH-PERP"], {}, FeesConfig())
    clock = FakeClock()
    venue = LiveVenue(client, config, ACCOUNT, catalog, clock=clock, sleep=FakeSleep(clock))
    await venue.start()
    return venue, catalog, clock


def _order(catalog: InstrumentCatalog, n: int, side: Side, size: float, **kw: Any) -> Order:
    limit = kw.get("limit")
    kind = OrderType.LIMIT if limit is not None else OrderType.MARKET
    prepared = catalog["ETH-PERP"].prepare(side, size, kind, limit, False, 3_000.0)
    return Order(f"pbcs{n}", "ETH-PERP", side, prepared.size, kind, prepared.price, False,
                 0, f"c{n}", kw.get("reason", "test"))  # fmt: skip


async def test_orders_fills_and_positions_agree_in_base_units(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    venue, catalog, _ = await _venue(emulator, make_client)
    assert catalog["ETH-PERP"].step_size == pytest.approx(0.0005)  # 0.001 contracts

    await venue.submit(_order(catalog, 1, Side.BUY, 0.02))
    sent = emulator.state.orders_by_client_id["pbcs1"]
    assert sent.orig_qty == pytest.approx(0.04)  # contracts: 0.02 ETH / 0.5
    fills = await venue.poll(FAR_FUTURE)
    assert sum(f.size for f in fills) == pytest.approx(0.02)
    assert all(f.price > 0 for f in fills)
    snap = await venue.snapshot()
    assert [(p.symbol, round(p.size, 9)) for p in snap.positions] == [("ETH-PERP", 0.02)]

    rest = _order(catalog, 2, Side.BUY, 0.03, limit=1_000.0)
    assert (await venue.submit(rest)).size == pytest.approx(0.03)
    assert emulator.state.orders_by_client_id["pbcs2"].orig_qty == pytest.approx(0.06)
    (still,) = [o for o in venue.open_orders() if o.client_id == "pbcs2"]
    assert still.remaining == pytest.approx(0.03)
    await venue.stop()

    # a restart finds the resting order in base units too
    again, _, _ = await _venue(emulator, make_client)
    assert again.last_snapshot is not None
    (found,) = again.last_snapshot.open_orders
    assert (found.client_id, found.size) == ("pbcs2", pytest.approx(0.03))
    await again.stop()
