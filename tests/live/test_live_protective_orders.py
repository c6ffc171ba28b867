"""Stop-loss and take-profit orders of the live venue on the emulator (SPEC 16), through
the real ccxt client: placed as reduce-only STOP_MARKET / TAKE_PROFIT_MARKET algo
orders, followed until they trigger, their fills booked with the exit reason, looked
up by client id, cancelled, and found again by a restarted venue."""

from dataclasses import replace

import pytest

from perps_bot.domain import Order, OrderStatus, OrderType, Side
from perps_bot.exchange.runtime import wall_clock_ms
from perps_bot.instruments import InstrumentCatalog
from perps_bot.venues.live import LiveVenue
from perps_emulator import EmulatorServer
from tests.live.live_helpers import ClientFactory
from tests.live.test_live_venue_emulator import FAR_FUTURE, Harness, instruments, live

__all__ = ["instruments", "live"]  # the fixtures this module reuses

pytestmark = pytest.mark.integration


def protective(live: Harness, kind: OrderType, trigger: float, cid: str) -> Order:
    order = live.order(Side.SELL, 0.002, reduce_only=True)
    return replace(order, client_id=cid, correlation_id=cid, order_type=kind,
                   trigger_price=trigger, reason=kind.exit_reason)  # fmt: skip


async def test_stop_and_take_profit_rest_on_the_exchange_and_the_stop_fills(
    live: Harness,
) -> None:
    live.server.set_price("BTCUSDT", 60_000.0)
    await live.venue.submit(live.order(Side.BUY, 0.002))
    await live.venue.poll(FAR_FUTURE)
    stop = await live.venue.submit(protective(live, OrderType.STOP_MARKET, 59_000.0, "pbstop1"))
    tp = await live.venue.submit(protective(live, OrderType.TAKE_PROFIT_MARKET, 62_000.0, "pbtp1"))
    assert stop.status is OrderStatus.ACCEPTED and tp.status is OrderStatus.ACCEPTED
    algos = {o.client_algo_id: o for o in live.server.state.algo_orders.values()}
    assert {cid: (o.type, o.side, o.reduce_only, o.trigger_price, o.working_type, o.status)
            for cid, o in algos.items()} == {
        "pbstop1": ("STOP_MARKET", "SELL", True, 59_000.0, "MARK_PRICE", "NEW"),
        "pbtp1": ("TAKE_PROFIT_MARKET", "SELL", True, 62_000.0, "MARK_PRICE", "NEW"),
    }  # fmt: skip
    snap = await live.venue.snapshot()
    assert sorted((o.client_id, o.order_type) for o in snap.open_orders) == [
        ("pbstop1", OrderType.STOP_MARKET), ("pbtp1", OrderType.TAKE_PROFIT_MARKET)]  # fmt: skip
    assert await live.venue.poll(FAR_FUTURE + 10_000) == []  # nothing triggered yet
    live.server.set_price("BTCUSDT", 58_800.0)
    fills = await live.venue.poll(FAR_FUTURE + 20_000)
    assert [(f.client_id, f.side, f.size, f.reason) for f in fills] == [
        ("pbstop1", Side.SELL, 0.002, "stop")]  # fmt: skip
    assert fills[0].price == pytest.approx(58_800.0, rel=1e-3)
    assert fills[0].fee > 0  # the exchange's commission of the market order it became
    assert stop.status is OrderStatus.FILLED
    assert live.server.state.positions["BTCUSDT"].amount == 0.0
    await live.venue.cancel("pbtp1", live.clock())
    assert tp.status is OrderStatus.CANCELED
    assert algos["pbtp1"].status == "CANCELED"
    since = wall_clock_ms() - 60_000
    assert await live.venue.exchange_fills(since, ["BTC-PERP"]) == []  # the stop's trade is ours
    assert (await live.venue.snapshot()).open_orders == []


async def test_a_trigger_order_is_looked_up_by_client_id_and_found_by_a_new_venue(
    live: Harness, emulator: EmulatorServer, make_client: ClientFactory,
    instruments: InstrumentCatalog,
) -> None:  # fmt: skip
    emulator.set_price("BTCUSDT", 60_000.0)
    await live.venue.submit(live.order(Side.BUY, 0.002))
    await live.venue.submit(protective(live, OrderType.TAKE_PROFIT_MARKET, 61_000.0, "pbtp2"))
    found = await live.venue.order_by_client_id("BTC-PERP", "pbtp2", OrderType.TAKE_PROFIT_MARKET)
    assert found is not None and found["status"] == "open"
    emulator.set_price("BTCUSDT", 61_200.0)  # it triggers while nobody watches
    found = await live.venue.order_by_client_id("BTC-PERP", "pbtp2", OrderType.TAKE_PROFIT_MARKET)
    assert found is not None and (found["status"], found["filled"]) == ("closed", 0.002)
    assert found["id"] == str(emulator.state.orders_by_client_id["pbtp2"].order_id)
    assert await live.venue.order_by_client_id("BTC-PERP", "nope", OrderType.STOP_MARKET) is None
    emulator.set_price("BTCUSDT", 60_000.0)
    await live.venue.submit(live.order(Side.BUY, 0.002))
    await live.venue.submit(protective(live, OrderType.STOP_MARKET, 59_000.0, "pbstop2"))
    again = LiveVenue(make_client(live.cfg, private=True), live.cfg, live.venue._account,
                      instruments, clock=live.clock, sleep=live.sleep)  # fmt: skip
    await again.start()  # a restarted bot: the stop is an open order it follows
    assert again.last_snapshot is not None
    (adopted,) = again.last_snapshot.open_orders
    seen = (adopted.client_id, adopted.order_type, adopted.trigger_price, adopted.reason)
    assert seen == ("pbstop2", OrderType.STOP_MARKET, 59_000.0, "stop") and adopted.reduce_only
    emulator.set_price("BTCUSDT", 58_000.0)
    fills = await again.poll(FAR_FUTURE)
    assert [(f.client_id, f.reason, f.size) for f in fills] == [("pbstop2", "stop", 0.002)]
    await again.stop()


async def test_a_stop_triggered_after_the_snapshot_is_not_booked_as_another_orders_fill(
    live: Harness,
) -> None:
    """The stop triggers after the snapshot read it (still waiting) and before the
    exchange-fill lookup reads the trades: its market order's id was learned only at the
    next poll, so its trade was booked as another order's (`ext-`), then again as the
    stop's fill once the poll learned the id: one execution, two fills."""
    since = wall_clock_ms() - 60_000
    live.server.set_price("BTCUSDT", 60_000.0)
    await live.venue.submit(live.order(Side.BUY, 0.002))
    await live.venue.poll(FAR_FUTURE)
    await live.venue.submit(protective(live, OrderType.STOP_MARKET, 59_000.0, "pbstop3"))
    assert [o.client_id for o in (await live.venue.snapshot()).open_orders] == ["pbstop3"]
    live.server.set_price("BTCUSDT", 58_800.0)
    assert live.server.state.positions["BTCUSDT"].amount == 0.0, "the stop did not trigger"
    assert await live.venue.exchange_fills(since, ["BTC-PERP"]) == []
    fills = await live.venue.poll(FAR_FUTURE + 20_000)
    assert [(f.client_id, f.size, f.reason) for f in fills] == [("pbstop3", 0.002, "stop")]
    assert await live.venue.exchange_fills(since, ["BTC-PERP"]) == []
