"""The exchange's fills since the last reconciliation are all booked, however many and
however far back the exchange keeps them (SPEC 9: nothing lost).

Measured on main: the venue read the account's trades with one call from `since`,
which Binance answers with at most 500 trades of at most the 7 days after it: none of
1,200 trades placed elsewhere 9 to 18 days after `since` was booked, all were adopted
with the position (their PnL and fees lost). Now the week windows are read until one
holds a trade and the rest is paged by trade id; a gap longer than the exchange keeps
(6 months) raises FillsOutOfReach (reconciliation then stops trading,
tests/orchestrator)."""

import pytest

from perps_bot.domain import Order, OrderType, Side
from perps_bot.venues import FillsOutOfReach
from perps_emulator import EmulatorServer
from perps_emulator.state import EmuOrder, EmuTrade
from tests.live.live_helpers import ClientFactory, FakeClock, started_venue

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
T0 = 1_700_000_000_000


async def _emulator(clock: FakeClock) -> EmulatorServer:
    server = EmulatorServer(seed=3, initial_balance=1_000_000.0, clock=clock)
    await server.start()
    return server


def _by_hand(server: EmulatorServer, times: list[int]) -> None:
    """The account's trade list holds buys of 0.01 ETH made elsewhere, one at each time
    (written into the emulator's history: placing 1,200 orders takes seconds)."""
    for n, ts in enumerate(times):
        trade = EmuTrade(10_000 + n, 50_000 + n, "ETHUSDT", "BUY", 2_000.0, 0.01, 0.01, 0.0,
                         False, ts)  # fmt: skip
        server.state.trades.append(trade)


async def test_every_fill_of_a_long_busy_gap_is_booked(make_client: ClientFactory) -> None:
    clock = FakeClock(T0)
    server = await _emulator(clock)
    try:
        venue, venue_clock = await started_venue(server, make_client)
        since = T0 + DAY_MS
        # 1,200 trades: 1,000 on day 9 (a week after since: not in its first window),
        # then one an hour for 200 hours
        times = [since + 9 * DAY_MS + i for i in range(1_000)]
        times += [since + 10 * DAY_MS + h * 3_600_000 for h in range(200)]
        _by_hand(server, [since - 5_000, *times])  # one before `since`: not booked
        venue_clock.now = clock.now = times[-1] + 60_000
        fills = await venue.exchange_fills(since, ["ETH-PERP"])
        assert [f.ts for f in fills] == times
        assert sum(f.size for f in fills) == pytest.approx(12.0)
        assert await venue.exchange_fills(since, ["ETH-PERP"]) == []  # handed out once
    finally:
        await server.stop()


async def test_a_liquidation_weeks_after_since_is_booked_as_one(
    make_client: ClientFactory,
) -> None:
    """Its order is in the forced-order list's third week from `since` (one read from
    `since` lists the first week only): booked as an ordinary trade, it was neither
    counted nor warned about as a liquidation."""
    clock = FakeClock(T0)
    server = await _emulator(clock)
    try:
        venue, venue_clock = await started_venue(server, make_client)
        at = T0 + 16 * DAY_MS
        _by_hand(server, [T0 + DAY_MS, at])
        order_id = server.state.trades[-1].order_id
        server.state.orders[order_id] = EmuOrder(
            order_id, f"autoclose-{order_id}", "ETHUSDT", "BUY", "LIMIT", "IOC", 2_000.0, 0.01,
            True, at, at, 0.01, 20.0, "FILLED", auto_close="LIQUIDATION",
        )  # fmt: skip
        venue_clock.now = clock.now = at + 60_000
        fills = await venue.exchange_fills(T0, ["ETH-PERP"])
        assert [f.is_liquidation for f in fills] == [False, True]
    finally:
        await server.stop()


async def test_a_gap_beyond_the_exchanges_history_is_out_of_reach(
    make_client: ClientFactory,
) -> None:
    clock = FakeClock(T0)
    server = await _emulator(clock)
    try:
        venue, venue_clock = await started_venue(server, make_client)
        venue_clock.now = clock.now = T0 + 200 * DAY_MS
        with pytest.raises(FillsOutOfReach, match="beyond the exchange's trade history"):
            await venue.exchange_fills(T0, ["ETH-PERP"])
    finally:
        await server.stop()


async def test_an_orders_commission_is_of_all_its_trades_or_unknown(
    make_client: ClientFactory,
) -> None:
    """Recovery reads one order's commission off its trades; one call answered 500 of
    them (Binance's default page), and the fee of an order of 600 trades was the sum of
    500, silently. Now a page of 1000 is read, and trades that do not add up to the
    order's executed quantity answer None (recovery then books the taker fee)."""
    clock = FakeClock(T0)
    server = await _emulator(clock)
    try:
        venue, _ = await started_venue(server, make_client)
        for n in range(600):  # one order of 6 ETH filled in 600 trades, 0.01 USDT each
            trade = EmuTrade(10_000 + n, 4_242, "ETHUSDT", "BUY", 2_000.0, 0.01, 0.01, 0.0,
                             False, T0 + n)  # fmt: skip
            server.state.trades.append(trade)
        fee = await venue.commission_of("ETH-PERP", "4242", 6.0)
        assert fee == pytest.approx(6.0)
        assert await venue.commission_of("ETH-PERP", "4242", 6.5) is None  # some not listed
    finally:
        await server.stop()


async def test_an_order_filled_in_600_trades_pays_their_commission(
    make_client: ClientFactory,
) -> None:
    """The venue reads an order's commission off its trades before it hands out the
    fills; one call answered 500 of them (Binance's default page): an order that
    filled against 600 makers kept the estimated fee. Now a page of 1000 is read."""
    clock = FakeClock(T0)
    server = await _emulator(clock)
    try:
        venue, _ = await started_venue(server, make_client)
        order = Order("big-1", "ETH-PERP", Side.BUY, 6.0, OrderType.MARKET, None, False, 0,
                      "big-1")  # fmt: skip
        await venue.submit(order)
        (exchange_id,) = {t.order_id for t in server.state.trades}
        # as Binance lists it: 600 trades of 0.01 against 600 makers, 0.001 USDT each
        server.state.trades[:] = [
            EmuTrade(
                10_000 + n, exchange_id, "ETHUSDT", "BUY", 3_000.0, 0.01, 0.001, 0.0, False, T0
            )
            for n in range(600)
        ]
        fills = await venue.poll(10**13)
        assert sum(f.size for f in fills) == pytest.approx(6.0)
        assert sum(f.fee for f in fills) == pytest.approx(0.6)
    finally:
        await server.stop()
