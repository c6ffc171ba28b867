"""The polling exchange feed stamps events with the wall clock at receipt; a wall clock
stepped back (an NTP correction, a VM resumed) must not make the feed's events go back
in time: the Feed protocol promises non-decreasing timestamps, which the bar builder,
the capture and its replay rely on. The polling feed handed out a batch older than the
one before it (the streaming feed already clamped)."""

import pytest

from perps_bot.feeds.exchange import ExchangeFeed
from perps_emulator import EmulatorServer
from tests.live.live_helpers import ClientFactory, FakeClock, FakeSleep, exchange_cfg

pytestmark = pytest.mark.integration


async def test_events_never_go_back_when_the_wall_clock_does(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    cfg = exchange_cfg(emulator)
    clock = FakeClock()
    feed = ExchangeFeed(make_client(cfg, private=False), cfg, ["ETH-PERP"], clock=clock,
                        sleep=FakeSleep())  # fmt: skip
    batches = feed.batches()
    first = list(await anext(batches))
    clock.now -= 5_000  # the wall clock is stepped back
    second = list(await anext(batches))
    await feed.stop()
    stamps = [e.ts for e in first + second]
    assert stamps == sorted(stamps), stamps
    assert feed.last_update("ETH-PERP") == max(stamps)
