"""An order an earlier run left open after it was already partly filled (SPEC 9, 14):
the venue that finds it open at its start follows it, and what it executed before
belongs to the position the start adopts. Its later fills carry only the exchange's
commission for their own trades, and its executed part is not handed out again."""

import pytest

from perps_bot.domain import Instrument, Order, OrderType, Side
from perps_bot.instruments import InstrumentCatalog
from perps_bot.venues.live.account import foreign_order
from perps_bot.venues.live.tracking import apply_reply
from perps_emulator import EmulatorServer
from perps_emulator.state import EmuOrder
from tests.live.live_helpers import ClientFactory
from tests.live.test_live_venue_emulator import FAR_FUTURE, Harness, instruments, live

pytestmark = pytest.mark.integration
__all__ = ["instruments", "live"]  # the fixtures this module reuses


def commissions(emulator: EmulatorServer, client_id: str) -> list[float]:
    """The commission of each trade of the order `client_id`, oldest first."""
    order = emulator.state.orders_by_client_id[client_id]
    return [t.commission for t in emulator.state.trades if t.order_id == order.order_id]


async def test_a_partly_filled_order_found_open_is_charged_its_later_trades_only(
    live: Harness, make_client: ClientFactory, instruments: InstrumentCatalog
) -> None:
    """A resting buy of 0.004 fills 0.001, the bot restarts, the rest fills. The
    restarted venue handed out the 0.003 with the commission of all four thousandths
    (the 0.001's, which the earlier run had booked, charged a second time)."""
    price = live.server.markets["BTCUSDT"].best_bid - 1_000.0
    resting = live.order(Side.BUY, 0.004, limit=price)
    await live.venue.submit(resting)
    emulated = live.server.state.orders_by_client_id[resting.client_id]
    live.server.engine.fill(emulated, 0.001, emulated.price, maker=True)
    (early,) = await live.venue.poll(FAR_FUTURE)
    assert early.size == pytest.approx(0.001)

    restarted = Harness(live.server, make_client, instruments)
    await restarted.venue.start()
    snap = restarted.venue.last_snapshot
    assert snap is not None and [o.filled for o in snap.open_orders] == [pytest.approx(0.001)]
    live.server.engine.fill(emulated, 0.003, emulated.price, maker=True)
    fills = await restarted.venue.poll(FAR_FUTURE)
    assert [(f.client_id, f.size) for f in fills] == [(resting.client_id, pytest.approx(0.003))]
    before, after = commissions(live.server, resting.client_id)
    assert early.fee == pytest.approx(before, abs=1e-9)
    assert fills[0].fee == pytest.approx(after, abs=1e-9)
    assert await restarted.venue.poll(FAR_FUTURE + 10_000) == []


ETH = Instrument("ETH-PERP", "ETH/USDT:USDT", 0.01, 0.001, 0.001, 20.0, ((0.0, 0.005, 0.0),),
                 2.0, 5.0, max_quantity=10_000.0, max_market_quantity=2_000.0)  # fmt: skip


def test_an_order_found_open_counts_the_fee_its_reply_already_carried() -> None:
    """An exchange whose order replies carry the order's fee so far: the order was found
    open with 1 of 3 executed and 0.5 charged; the next reply says 2 executed, 0.8
    charged. Its new fill's fee is the 0.3 charged since, not the 0.8."""
    row = {"id": "7", "clientOrderId": "old1", "symbol": "ETH/USDT:USDT", "side": "buy",
           "type": "limit", "amount": 3.0, "price": 2_000.0, "filled": 1.0,
           "average": 2_000.0, "cost": 2_000.0, "status": "open",
           "fee": {"cost": 0.5, "currency": "USDT"}}  # fmt: skip
    tracked = foreign_order(row, "ETH-PERP", 1_000)
    reply = {**row, "filled": 2.0, "cost": 4_000.0, "fee": {"cost": 0.8, "currency": "USDT"}}
    (fill,) = apply_reply(tracked, reply, 2_000, ETH, on_arrival=False)
    assert (fill.size, fill.price, fill.fee) == (1.0, 2_000.0, pytest.approx(0.3))


async def partly_filled_then_restarted(
    live: Harness, make_client: ClientFactory, instruments: InstrumentCatalog
) -> tuple[Order, EmuOrder, Harness]:
    """A resting buy of 0.004 that filled 0.001 (booked by its run), and a venue started
    after it, which found it open: the order, the exchange's, the restarted venue."""
    price = live.server.markets["BTCUSDT"].best_bid - 1_000.0
    resting = live.order(Side.BUY, 0.004, limit=price)
    await live.venue.submit(resting)
    emulated = live.server.state.orders_by_client_id[resting.client_id]
    live.server.engine.fill(emulated, 0.001, emulated.price, maker=True)
    assert len(await live.venue.poll(FAR_FUTURE)) == 1
    restarted = Harness(live.server, make_client, instruments)
    await restarted.venue.start()
    return resting, emulated, restarted


async def test_what_recovery_books_of_an_order_found_open_is_not_charged_again(
    live: Harness, make_client: ClientFactory, instruments: InstrumentCatalog
) -> None:
    """The order fills 0.001 more after the start found it open, before recovery looks it
    up and books that part (with its commission) into the earlier run; the rest fills in
    this run. Its fill was charged the commission of the 0.001 recovery booked too."""
    resting, emulated, restarted = await partly_filled_then_restarted(
        live, make_client, instruments
    )
    live.server.engine.fill(emulated, 0.001, emulated.price, maker=True)
    found = await restarted.venue.order_by_client_id("BTC-PERP", resting.client_id, OrderType.LIMIT)
    assert found is not None and found["filled"] == pytest.approx(0.002)
    live.server.engine.fill(emulated, 0.002, emulated.price, maker=True)
    fills = await restarted.venue.poll(FAR_FUTURE)
    assert [(f.client_id, f.size) for f in fills] == [(resting.client_id, pytest.approx(0.002))]
    *_, last = commissions(live.server, resting.client_id)
    assert fills[0].fee == pytest.approx(last, abs=1e-9)


async def test_the_commission_recovery_reads_is_of_what_the_order_had_executed(
    live: Harness, make_client: ClientFactory, instruments: InstrumentCatalog
) -> None:
    """Recovery found the order executed 0.002 and asks the commission of those; the rest
    filled in between. The answer was the commission of all 0.004 (the rest's charged
    into the earlier run, and again with the rest's fill in this one)."""
    resting, emulated, restarted = await partly_filled_then_restarted(
        live, make_client, instruments
    )
    live.server.engine.fill(emulated, 0.001, emulated.price, maker=True)
    found = await restarted.venue.order_by_client_id("BTC-PERP", resting.client_id, OrderType.LIMIT)
    assert found is not None
    live.server.engine.fill(emulated, 0.002, emulated.price, maker=True)
    charged = await restarted.venue.commission_of("BTC-PERP", str(found["id"]), found["filled"])
    first, second, last = commissions(live.server, resting.client_id)
    assert charged == pytest.approx(first + second, abs=1e-9)
    (fill,) = await restarted.venue.poll(FAR_FUTURE)
    assert fill.fee == pytest.approx(last, abs=1e-9)


async def test_what_an_order_executes_after_the_start_took_the_account_is_the_new_runs(
    live: Harness, make_client: ClientFactory, instruments: InstrumentCatalog
) -> None:
    """The start took the account holding 0.001 of the order; it fills 0.001 more before
    recovery looks it up. Recovery is told the 0.001 taken (what it books into the
    earlier run), and the 0.001 after is handed out here, with its trade's commission.
    Before, recovery's look-up took it for the earlier run and it was never handed out."""
    resting, emulated, restarted = await partly_filled_then_restarted(
        live, make_client, instruments
    )
    venue = restarted.venue
    await venue.snapshot_to_adopt(restarted.clock() - 60_000, ["BTC-PERP"])
    live.server.engine.fill(emulated, 0.001, emulated.price, maker=True)
    found = await venue.order_by_client_id("BTC-PERP", resting.client_id, OrderType.LIMIT)
    assert found is not None and found["filled"] == pytest.approx(0.002)
    fills = await venue.poll(FAR_FUTURE)
    assert [(f.client_id, f.size) for f in fills] == [(resting.client_id, pytest.approx(0.001))]
    *_, last = commissions(live.server, resting.client_id)
    assert fills[0].fee == pytest.approx(last, abs=1e-9)
    assert await venue.poll(FAR_FUTURE + 10_000) == []
    taken = venue.taken_at_start(resting.client_id)
    assert taken is not None and taken.filled == pytest.approx(0.001)
    assert taken.cost == pytest.approx(0.001 * emulated.price)
