"""A strategy on 1w bars starts warmed up. The bot's weeks open on the epoch's grid
(Thursdays, feeds.bars); Binance's weekly klines on Mondays, so they are no bars of the
bot's and on main the run started cold ('off the bot's 1w bars'). The weeks are now
built from the exchange's daily klines, as 2m bars are from 1m ones. Against the
loopback emulator (its weeks open on Mondays, as Binance's) through ccxt."""

import itertools

import pytest

from perps_emulator import EmulatorServer
from tests.live.live_helpers import ClientFactory, FakeClock, exchange_cfg
from tests.live.warmup_helpers import fake_feed

pytestmark = pytest.mark.integration

DAY = 86_400_000
WEEK = 7 * DAY
#: Monday 2023-11-20 00:00 UTC, where a Binance weekly candle opens
MONDAY = 1_700_438_400_000
NOW = MONDAY + 2 * WEEK + 5 * DAY + 5_000  # a Saturday: the bot's week began on Thursday


@pytest.mark.parametrize("count", [5, 150])  # 150 weeks: more daily klines than a request
async def test_weekly_bars_are_warmed_up_from_daily_klines(
    make_client: ClientFactory, count: int, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(NOW)
    async with EmulatorServer(symbols=("ETHUSDT",), seed=3, clock=clock) as server:
        feed = fake_feed(server, make_client, clock)
        bars = (await feed.warmup_candles({"ETH-PERP": count}, WEEK)).get("ETH-PERP", [])
        client = make_client(exchange_cfg(server), private=False)
        since = NOW - NOW % WEEK - count * WEEK  # the first week's daily klines
        days = await client.fetch_ohlcv("ETH/USDT:USDT", "1d", since=since, limit=7)
    assert "without warm-up" not in caplog.text
    assert len(bars) == count
    assert {b.ts - b.open_time for b in bars} == {WEEK}
    assert all(b.open_time == a.ts for a, b in itertools.pairwise(bars))
    assert bars[-1].ts == NOW - NOW % WEEK  # a Thursday, where the first live bar opens
    first = bars[0]  # the week of seven daily klines
    assert [d[0] for d in days] == [first.open_time + i * DAY for i in range(7)]
    assert first.open == float(days[0][1]) and first.close == float(days[-1][4])
    assert first.high == max(float(d[2]) for d in days)
