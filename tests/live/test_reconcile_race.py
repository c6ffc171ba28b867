"""Reconciliation while orders are working (SPEC 9): one execution is booked once. A
resting order that fills on the exchange after the venue's last poll is in the account's
snapshot before the venue's poll tells of it; an order found open and followed by the
venue is not another order's fill to the exchange-fill lookup."""

import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import load_settings
from perps_bot.domain import BookSnapshot, MarketEvent, Order, OrderType, Quote, Side
from perps_bot.exchange.runtime import wall_clock_ms
from perps_bot.orchestrator.runner import run_bot
from perps_bot.venues.live import LiveVenue
from perps_emulator import EmulatorServer
from tests.harness.scripted import ScriptedFeed
from tests.live.live_helpers import (
    ACCOUNT,
    API_KEY,
    API_SECRET,
    ClientFactory,
    FakeClock,
    FakeSleep,
    exchange_cfg,
    exchange_instruments,
    started_venue,
)

pytestmark = pytest.mark.integration

START_MS = 1_704_067_200_000


class SteppedFeed(ScriptedFeed):
    """Order books of ETH-PERP at the given times (simulated clock); before the book at
    a time in `before`, its action runs (moves the emulator's market)."""

    def __init__(
        self,
        times: Sequence[int],
        before: dict[int, Callable[[], None]],
        price: Callable[[], float],
    ) -> None:
        super().__init__([])
        self.price = price
        self.times = list(times)
        self.before = before

    async def batches(self) -> AsyncIterator[Sequence[MarketEvent]]:
        for ts in self.times:
            if self.stopped:
                return
            action = self.before.get(ts)
            if action is not None:
                action()
            self.done += 1
            price = self.price()
            if ts == self.times[0]:  # a quote first: the bid goes out with the first book
                yield [Quote(ts, "ETH-PERP", price, price - 0.5, price + 0.5, price)]
            else:
                yield [BookSnapshot(ts, "ETH-PERP", [(price - 0.5, 1.0)], [(price + 0.5, 1.0)],
                                    price)]  # fmt: skip

    def progress(self) -> tuple[int, int | None]:
        return self.done, len(self.times)


async def test_a_fill_between_the_venues_poll_and_a_reconciliation_is_booked_once(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """The bid rests from t=500 (the venue polls it then); it fills on the exchange at
    t=800; the reconciliation at t=1000 reads the account (long) before the venue's next
    poll (due at 1500) tells of the fill. It adopted the long, then the poll booked the
    fill on top: the books held twice the position the exchange did."""
    settings = load_settings(
        "canary",
        {
            "run": {"duration": "60s", "live_view": False, **run_dirs},
            "exchange": {"base_url": emulator.base_url, "poll_interval": "1s",
                         "reconcile_interval": "1s", "api_key": API_KEY,
                         "api_secret": API_SECRET},
            "strategy": {"name": "tests.live.canary_strategy:RestingBid",
                         "params": {"below": 0.9}, "order_size": {"ETH-PERP": 0.05}},
        },
    )  # fmt: skip

    def fill_the_bid() -> None:
        (order,) = emulator.state.orders.values()
        emulator.set_price("ETHUSDT", order.price * 0.98)

    times = [START_MS, START_MS + 500, START_MS + 800, START_MS + 1_000, START_MS + 2_000,
             START_MS + 3_000]  # fmt: skip
    feed = SteppedFeed(times, {START_MS + 800: fill_the_bid}, lambda: emulator.price("ETHUSDT"))
    result = await run_bot(settings, feed=feed, progress=False)
    assert result.status == "completed"
    held = emulator.state.positions["ETHUSDT"].amount
    assert held > 0, "the bid did not fill"
    with sqlite3.connect(result.db_path) as conn:
        fills = conn.execute(
            "SELECT size, position_after FROM fills WHERE run_id=?", (result.run_id,)
        ).fetchall()
    assert fills == [(held, held)], "one execution, one fill, the position the exchange's"
    journal = (Path(run_dirs["log_dir"]) / "events.jsonl").read_text().splitlines()
    reconciles = [json.loads(line) for line in journal if '"reconcile"' in line]
    assert len(reconciles) >= 3
    assert [r["mismatched"] for r in reconciles] == [[]] * len(reconciles), reconciles


async def test_an_order_found_open_is_not_booked_again_as_another_orders_fill(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    """An order placed by hand rests; a snapshot finds it and the venue follows it, so its
    fill comes from its status at the next poll. A later reconciliation that looks for
    the fills no order of the venue explains (a market order by hand) found the followed
    order's trade too and booked it again: one execution, two fills."""
    venue, clock = await started_venue(emulator, make_client)
    hand = make_client(exchange_cfg(emulator), private=True)
    await hand.load_markets()
    price = emulator.price("ETHUSDT")
    await hand.create_order("ETH/USDT:USDT", "limit", "buy", 0.01, round(price * 0.9, 2),
                            {"newClientOrderId": "byhand1"})  # fmt: skip
    (found,) = (await venue.snapshot()).open_orders
    assert found.client_id == "byhand1"
    emulator.set_price("ETHUSDT", price * 0.85)
    clock.now += 5_000
    assert [(f.client_id, f.size) for f in await venue.poll(clock.now)] == [("byhand1", 0.01)]
    await hand.create_order("ETH/USDT:USDT", "market", "buy", 0.02)
    others = await venue.exchange_fills(wall_clock_ms() - 60_000, ["ETH-PERP"])
    assert [f.size for f in others] == [0.02]
    await venue.stop()


async def _venue_and_client(
    emulator: EmulatorServer, make_client: ClientFactory
) -> tuple[LiveVenue, Any, FakeClock]:
    """A started venue on ETH-PERP and its ccxt client (a test wraps its reads)."""
    instruments = await exchange_instruments(emulator, make_client, ["ETH-PERP"])
    config = exchange_cfg(emulator)
    client, clock = make_client(config, private=True), FakeClock()
    venue = LiveVenue(client, config, ACCOUNT, instruments, clock=clock, sleep=FakeSleep(clock))
    await venue.start()
    return venue, client, clock


async def test_an_order_found_open_that_executes_while_the_account_is_read_is_booked(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    """An order placed by hand rests; part of it executes right after the snapshot read
    the positions, before it read the open orders. Found then, that part counted as
    executed before (in the position), but the position read had not held it: the
    snapshot's position and the fills after it were short of the exchange's (until a
    later reconciliation adopted it, never booked as a fill)."""
    venue, client, clock = await _venue_and_client(emulator, make_client)
    hand = make_client(exchange_cfg(emulator), private=True)
    await hand.load_markets()
    price = round(emulator.price("ETHUSDT") * 0.9, 2)
    await hand.create_order("ETH/USDT:USDT", "limit", "buy", 0.01, price,
                            {"newClientOrderId": "byhand2"})  # fmt: skip
    read_positions = client.fapiPrivateV3GetPositionRisk

    async def positions_then_a_fill(*args: object) -> object:
        rows = await read_positions(*args)
        if client.fapiPrivateV3GetPositionRisk is positions_then_a_fill:
            client.fapiPrivateV3GetPositionRisk = read_positions  # once
            (order,) = emulator.state.orders.values()
            emulator.engine.fill(order, 0.004, price, maker=True)
        return rows

    client.fapiPrivateV3GetPositionRisk = positions_then_a_fill
    snap = await venue.snapshot()
    assert [o.client_id for o in snap.open_orders] == ["byhand2"]
    held = sum(p.size for p in snap.positions if p.symbol == "ETH-PERP")
    clock.now += 5_000
    later = [f.size for f in await venue.poll(clock.now) if f.client_id == "byhand2"]
    assert emulator.state.positions["ETHUSDT"].amount == 0.004
    assert held + sum(later) == pytest.approx(0.004), "the execution is in the account or a fill"
    await venue.stop()
    await hand.close()


async def test_a_liquidation_between_the_two_reads_of_the_fill_lookup_is_one(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    """The exchange liquidates the long after the fill lookup read its liquidations and
    before it read the trades: its trade was booked as an ordinary trade of another
    order (no liquidation counted or warned about, a run that passed promotion's "no
    liquidations")."""
    venue, client, _ = await _venue_and_client(emulator, make_client)
    order = Order("rr-1", "ETH-PERP", Side.BUY, 0.01, OrderType.MARKET, None, False, 0, "rr-1")
    await venue.submit(order)
    since = emulator.state.trades[0].time - 1_000
    read_trades = client.fetch_my_trades

    async def liquidated_then_trades(*args: object) -> object:
        client.fetch_my_trades = read_trades  # once
        emulator.liquidation = True
        emulator.set_price("ETHUSDT", emulator.price("ETHUSDT") * 0.3)
        return await read_trades(*args)

    client.fetch_my_trades = liquidated_then_trades
    (fill,) = await venue.exchange_fills(since, ["ETH-PERP"])
    assert emulator.state.positions["ETHUSDT"].amount == 0.0, "not liquidated"
    assert (fill.side, fill.size, fill.is_liquidation) == (Side.SELL, 0.01, True)
    await venue.stop()
