"""Public trades the exchange lists twice in one answer (overlapping pages, a row
repeated) reach the bot once: the feed handed each copy out with the next book, so
the queue fill model advanced twice on one trade (a resting paper order filled before
the real queue ahead of it was gone) and the capture recorded a trade that never
happened."""

import pytest

from perps_bot.domain import BookSnapshot
from perps_bot.feeds.exchange import ExchangeFeed
from perps_emulator import EmulatorServer, Fault
from tests.live.live_helpers import ClientFactory, FakeClock, FakeSleep, exchange_cfg

pytestmark = pytest.mark.integration


async def test_a_public_trade_listed_twice_is_seen_once(make_client: ClientFactory) -> None:
    clock = FakeClock()
    async with EmulatorServer(
        symbols=("ETHUSDT",), seed=4, clock=clock, microstructure=True
    ) as server:
        cfg = exchange_cfg(server)
        client = make_client(cfg, private=False)
        feed = ExchangeFeed(client, cfg, ["ETH-PERP"], clock=clock, sleep=FakeSleep(clock))
        for _ in range(20):  # other participants trade, after the feed started
            clock.now += 100
            server.step()
        made = [(t.time, t.price, t.qty) for t in server.engine.flow.trades["ETHUSDT"]]
        assert len(made) >= 2, "the emulator made no trades to list"
        server.inject(Fault("repeat", method="GET", path="/fapi/v1/aggTrades", count=100))
        batch = await anext(feed.batches())
        await feed.stop()
        await client.close()
    (book,) = [e for e in batch if isinstance(e, BookSnapshot)]
    assert [(t.ts, t.price, t.qty) for t in book.trades] == made
    assert feed.tape.accepted == {"ETH-PERP": len(made)}
