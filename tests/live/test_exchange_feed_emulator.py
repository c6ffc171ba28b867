"""ExchangeFeed against the loopback emulator through the real ccxt client (public only):
what it emits, that it never calls a private endpoint, funding once per period, and that
outages are retried with backoff and never end the stream."""

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from perps_bot.config.models import MockConfig
from perps_bot.domain import (
    BookSnapshot,
    Fill,
    FundingRate,
    MarketEvent,
    MarkPrice,
    Order,
    OrderType,
    Side,
)
from perps_bot.feeds.base import FeedError
from perps_bot.feeds.exchange import ExchangeFeed
from perps_bot.venues.mock import MockVenue
from perps_emulator import EmulatorServer, Fault
from tests.live.live_helpers import (
    ClientFactory,
    FakeClock,
    FakeSleep,
    exchange_cfg,
    exchange_instruments,
)
from tests.venues.paper import rich_ledger

pytestmark = pytest.mark.integration

SYMBOLS = ["BTC-PERP", "ETH-PERP"]
EIGHT_HOURS = 8 * 3_600_000


async def take(batches: AsyncIterator[Sequence[MarketEvent]], n: int) -> list[list[MarketEvent]]:
    out: list[list[MarketEvent]] = []
    for _ in range(n):
        out.append(list(await anext(batches)))
    return out


def flat(batches: list[list[MarketEvent]]) -> list[MarketEvent]:
    return [event for batch in batches for event in batch]


async def test_dry_run_feed_emits_books_and_marks_and_calls_only_public_endpoints(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    cfg = exchange_cfg(emulator)
    clock = FakeClock()
    sleep = FakeSleep(clock)
    feed = ExchangeFeed(make_client(cfg, private=False), cfg, SYMBOLS, clock=clock, sleep=sleep)
    await feed.start()
    batches = feed.batches()
    events = flat(await take(batches, 3))
    await feed.stop()
    assert [b async for b in batches] == []

    books = [e for e in events if isinstance(e, BookSnapshot)]
    marks = [e for e in events if isinstance(e, MarkPrice)]
    assert len(books) == 6 and len(marks) == 6
    btc = emulator.markets["BTCUSDT"]
    for book in books:
        assert book.bids[0][0] < book.asks[0][0]
        assert len(book.bids) == 20 and len(book.asks) == 20
        if book.symbol == "BTC-PERP":
            assert book.bids[0][0] == pytest.approx(btc.best_bid)
            assert book.asks[0][0] == pytest.approx(btc.best_ask)
            assert book.last == pytest.approx(btc.last)
            assert book.mark == pytest.approx(btc.mark)
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    assert sleep.delays == [1.0, 1.0]  # polls every exchange.poll_interval
    assert feed.healthy and feed.last_update("ETH-PERP") == clock.now
    assert feed.progress() == (3, None)

    assert emulator.private_calls() == []
    paths = {path for _, path, _ in emulator.calls}
    assert {"/fapi/v1/depth", "/fapi/v1/ticker/24hr", "/fapi/v1/premiumIndex"} <= paths


async def test_funding_is_emitted_once_when_the_funding_time_passes(
    make_client: ClientFactory,
) -> None:
    boundary = 1_700_006_400_000  # a multiple of 8h
    assert boundary % EIGHT_HOURS == 0
    clock = FakeClock(boundary - 5_000)
    async with EmulatorServer(clock=clock) as server:
        cfg = exchange_cfg(server)
        client = make_client(cfg, private=False)
        feed = ExchangeFeed(client, cfg, SYMBOLS, clock=clock, sleep=FakeSleep())
        batches = feed.batches()
        (first,) = await take(batches, 1)
        assert not [e for e in first if isinstance(e, FundingRate)]
        settled_rate = server.markets["BTCUSDT"].funding_rate

        clock.now = boundary + 2_000
        server.step()  # the exchange moves on: new rate, next funding time + 8h
        assert server.markets["BTCUSDT"].funding_rate != settled_rate
        (second,) = await take(batches, 1)
        (third,) = await take(batches, 1)
        await feed.stop()
        await client.close()  # before the server goes: no lingering keep-alive

    funding = [e for e in second if isinstance(e, FundingRate)]
    assert sorted(f.symbol for f in funding) == SYMBOLS
    btc = next(f for f in funding if f.symbol == "BTC-PERP")
    assert btc.ts == boundary
    assert btc.rate == pytest.approx(settled_rate)
    assert btc.mark > 0
    assert [e.ts for e in second] == sorted(e.ts for e in second)
    assert not [e for e in third if isinstance(e, FundingRate)]


async def test_funding_follows_the_local_clock_when_the_exchange_is_late(
    make_client: ClientFactory,
) -> None:
    boundary = 1_700_006_400_000
    exchange_clock = FakeClock(boundary - 5_000)
    feed_clock = FakeClock(boundary - 5_000)
    async with EmulatorServer(clock=exchange_clock) as server:
        cfg = exchange_cfg(server)
        client = make_client(cfg, private=False)
        feed = ExchangeFeed(client, cfg, SYMBOLS, clock=feed_clock, sleep=FakeSleep())
        batches = feed.batches()
        await take(batches, 1)
        feed_clock.now = boundary + 500  # our clock passed it; the exchange has not rolled
        latest_rate = server.markets["ETHUSDT"].funding_rate
        (second,) = await take(batches, 1)
        exchange_clock.now = boundary + 1_000  # now it rolls too: no second settlement
        server.step()
        feed_clock.now = boundary + 1_500
        (third,) = await take(batches, 1)
        await feed.stop()
        await client.close()  # before the server goes: no lingering keep-alive
    eth = [e for e in second if isinstance(e, FundingRate) and e.symbol == "ETH-PERP"]
    assert len(eth) == 1 and eth[0].ts == boundary
    assert eth[0].rate == pytest.approx(latest_rate)
    assert not [e for e in third if isinstance(e, FundingRate)]


BACKOFF = [0.01, 0.02, 1.0]  # backoff, backoff, then the poll interval


@pytest.mark.parametrize(
    ("fault", "waits"),
    [
        (Fault("status", method="GET", path="/fapi/v1/depth", count=4, status=503), BACKOFF),
        # the exchange's Retry-After, not the 10 ms backoff (Binance bans who keeps asking)
        (Fault("rate_limit", method="GET", path="/fapi/v1/depth", count=4, retry_after=3),
         [3.0, 3.0, 1.0]),
        (Fault("malformed", method="GET", path="/fapi/v1/depth", count=4), BACKOFF),
        (Fault("error_code", method="GET", path="/fapi/v1/premiumIndex", count=4, code=-1001),
         BACKOFF),
    ],
    ids=["503", "429", "malformed", "-1001"],
)  # fmt: skip
async def test_outage_backs_off_and_recovers_without_ending_the_stream(
    emulator: EmulatorServer, make_client: ClientFactory, fault: Fault, waits: list[float]
) -> None:
    cfg = exchange_cfg(emulator)
    clock = FakeClock()
    sleep = FakeSleep(clock)
    feed = ExchangeFeed(make_client(cfg, private=False), cfg, SYMBOLS, clock=clock, sleep=sleep)
    emulator.inject(fault)  # 2 symbols per poll: the first two polls fail
    batches = feed.batches()
    failing = await take(batches, 2)
    assert not feed.healthy and feed.consecutive_failures == 2
    recovered = await take(batches, 2)
    await feed.stop()

    assert feed.healthy and feed.errors == 4
    assert sleep.delays[:3] == waits
    kinds = {type(e) for e in flat(recovered)}
    assert {BookSnapshot, MarkPrice} <= kinds
    # partial data still flows during the outage (what did not fail)
    assert flat(failing)


async def test_stale_data_when_exchange_stays_down(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    cfg = exchange_cfg(emulator)
    clock = FakeClock()
    sleep = FakeSleep(clock)
    feed = ExchangeFeed(make_client(cfg, private=False), cfg, SYMBOLS, clock=clock, sleep=sleep)
    batches = feed.batches()
    await take(batches, 1)
    seen = feed.last_update("BTC-PERP")
    emulator.inject(Fault("status", method="*", path="*", count=1_000))
    poll = asyncio.ensure_future(anext(batches))  # no events arrive: nothing to yield
    for _ in range(500):  # real requests to the emulator: wait for them, not a fixed time
        await asyncio.sleep(0.01)
        if len(sleep.delays) >= 6:
            break
    assert not poll.done()
    assert not feed.healthy and feed.last_update("BTC-PERP") == seen
    assert sleep.delays[1:6] == [0.01, 0.02, 0.04, 0.08, 0.08]  # capped at backoff_max
    await feed.stop()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(poll, 2)


async def test_stop_ends_batches_promptly_during_a_long_wait(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    cfg = exchange_cfg(emulator, poll_interval="1h")
    feed = ExchangeFeed(make_client(cfg, private=False), cfg, SYMBOLS)  # real sleep
    batches = feed.batches()
    await take(batches, 1)
    waiting = asyncio.ensure_future(anext(batches))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await feed.stop()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 2)


async def test_unknown_symbol_is_a_feed_error(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    cfg = exchange_cfg(emulator)
    feed = ExchangeFeed(make_client(cfg, private=False), cfg, ["BTC-PERP", "DOGE-PERP"])
    with pytest.raises(FeedError, match=r"does not list DOGE-PERP \(DOGE/USDT:USDT\)"):
        await feed.start()


async def test_mock_venue_fills_against_the_real_book(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    """The canary dry-run venue: MockVenue matching on the exchange's order books."""
    cfg = exchange_cfg(emulator)
    clock = FakeClock()
    feed = ExchangeFeed(
        make_client(cfg, private=False), cfg, SYMBOLS, clock=clock, sleep=FakeSleep(clock)
    )
    instruments = await exchange_instruments(emulator, make_client, SYMBOLS)
    venue = MockVenue(MockConfig(fill_probability=1.0), instruments, 1, rich_ledger())
    batches = feed.batches()
    (first,) = await take(batches, 1)
    for event in first:
        assert venue.on_market(event) == ()
    book = next(e for e in first if isinstance(e, BookSnapshot) and e.symbol == "BTC-PERP")
    order = Order("dry-1", "BTC-PERP", Side.BUY, 0.01, OrderType.MARKET, None, False, book.ts, "c1")
    await venue.submit(order)
    fills: list[Fill] = []
    for batch in await take(batches, 2):
        for event in batch:
            fills.extend(venue.on_market(event))
    await feed.stop()

    assert len(fills) == 1
    fill = fills[0]
    best_ask = emulator.markets["BTCUSDT"].best_ask
    assert fill.client_id == "dry-1" and fill.size == pytest.approx(0.01)
    assert best_ask <= fill.price <= best_ask * 1.001  # walked the real asks (+ slippage bps)
    assert fill.fee > 0
    assert emulator.private_calls() == []
    assert emulator.state.orders == {}  # nothing reached the exchange
