"""Warm-ups longer than one klines request (feeds.exchange_warmup): ccxt's binanceusdm
asks for at most 1,000 klines a call, so a strategy wanting MAX_WARMUP_BARS bars got 999
of them (the newest kline is still open), and one on bars built from finer klines (2m
from 1m) got about half. The klines are now fetched page by page from where the
warm-up begins. Against the loopback emulator through ccxt, on the emulator's clock."""

import itertools

import pytest

from perps_bot.domain import Candle
from perps_bot.strategies import MAX_WARMUP_BARS
from perps_emulator import EmulatorServer, Fault
from tests.live.live_helpers import ClientFactory, FakeClock
from tests.live.warmup_helpers import MINUTE, START, fake_feed

pytestmark = pytest.mark.integration

KLINES = "/fapi/v1/klines"


def assert_follow_on(bars: list[Candle], width: int, now: int) -> None:
    """Bars of `width`, one after the other, up to the bar `now` is in."""
    assert {b.ts - b.open_time for b in bars} == {width}
    assert all(b.open_time == a.ts for a, b in itertools.pairwise(bars))
    assert bars[-1].ts == now - now % width


def klines_asked(server: EmulatorServer) -> int:
    return sum(1 for _, path, _ in server.calls if path == KLINES)


@pytest.mark.parametrize("width", [MINUTE, 2 * MINUTE])
async def test_a_warm_up_longer_than_one_klines_request_gets_every_bar(
    make_client: ClientFactory, width: int
) -> None:
    clock = FakeClock(START)
    async with EmulatorServer(symbols=("ETHUSDT",), seed=3, clock=clock) as server:
        feed = fake_feed(server, make_client, clock)
        got = await feed.warmup_candles({"ETH-PERP": MAX_WARMUP_BARS}, width)
        bars = got["ETH-PERP"]
        assert len(bars) == MAX_WARMUP_BARS
        assert_follow_on(bars, width, clock.now)
        # pages of 1,000 klines: 1,001 or 2,002 of them (the open one too), and no more
        assert klines_asked(server) <= (width // MINUTE) + 2


async def test_a_page_that_fails_is_asked_again_alone(make_client: ClientFactory) -> None:
    """An exchange failing on the second page: that page is asked again, the first is
    kept, and the bars follow on."""
    clock = FakeClock(START)
    async with EmulatorServer(symbols=("ETHUSDT",), seed=3, clock=clock) as server:
        server.inject(Fault("status", method="GET", path=KLINES, after=1))
        feed = fake_feed(server, make_client, clock)
        bars = (await feed.warmup_candles({"ETH-PERP": MAX_WARMUP_BARS}, MINUTE))["ETH-PERP"]
        assert len(bars) == MAX_WARMUP_BARS
        assert_follow_on(bars, MINUTE, clock.now)
        assert klines_asked(server) == 3
