"""A funding time that had already passed on the bot's clock when the feed first saw the
symbol is not settled by the feed (the previous session settled it, or the bot held
nothing then). The exchange rolls its next funding time a moment after the boundary;
a feed starting in that moment settled the period on its second poll, so a resumed
run that had already booked it was charged the funding twice."""

import pytest

from perps_bot.domain import FundingRate
from perps_bot.feeds.exchange import ExchangeFeed
from perps_emulator import EmulatorServer
from tests.live.live_helpers import ClientFactory, FakeClock, FakeSleep, exchange_cfg

pytestmark = pytest.mark.integration

BOUNDARY = 1_700_006_400_000  # a multiple of 8h


async def test_a_funding_time_passed_before_the_feed_started_is_not_settled(
    make_client: ClientFactory,
) -> None:
    exchange_clock = FakeClock(BOUNDARY - 5_000)  # the exchange has not rolled yet
    feed_clock = FakeClock(BOUNDARY + 500)  # our clock is past the boundary at start
    async with EmulatorServer(clock=exchange_clock) as server:
        cfg = exchange_cfg(server)
        client = make_client(cfg, private=False)
        feed = ExchangeFeed(client, cfg, ["ETH-PERP"], clock=feed_clock, sleep=FakeSleep())
        batches = feed.batches()
        seen = [list(await anext(batches)) for _ in range(2)]
        exchange_clock.now = BOUNDARY + 1_000  # now the exchange rolls
        server.step()
        feed_clock.now = BOUNDARY + 1_500
        seen.append(list(await anext(batches)))
        await feed.stop()
        await client.close()
    assert [e for batch in seen for e in batch if isinstance(e, FundingRate)] == []
