"""A hole in the warm-up's klines (feeds.exchange_warmup): an exchange missing candles
(an outage in its history, a page that came back short). On main the candles either
side of it were handed to the strategy as one series, the averages spanning the hole
as if those bars had never been, and nothing was said. The klines are now asked once
more; a hole still there is said in one warning line, and the strategies learn from
the bars after it only (as a backtest refuses a file with a hole). Against the loopback
emulator through ccxt, on the emulator's clock."""

import itertools

import pytest

from perps_bot.domain import iso_utc
from perps_emulator import EmulatorServer, Fault
from tests.live.live_helpers import ClientFactory, FakeClock
from tests.live.warmup_helpers import MINUTE, START, fake_feed

pytestmark = pytest.mark.integration

KLINES = "/fapi/v1/klines"
LIVE_FROM = START - START % MINUTE  # the first live bar opens here
#: three minutes the exchange has no candles of, ten minutes before the start
HOLE = {"from": LIVE_FROM - 10 * MINUTE, "until": LIVE_FROM - 7 * MINUTE}


async def warm_up(make_client: ClientFactory, holes: int, width: int = MINUTE) -> list[int]:
    """The open times of the 30 warm-up bars of `width` the exchange's klines give when
    `holes` answers in a row miss HOLE."""
    clock = FakeClock(START)
    async with EmulatorServer(symbols=("ETHUSDT",), seed=3, clock=clock) as server:
        server.inject(Fault("hole", method="GET", path=KLINES, count=holes, fields=HOLE))
        feed = fake_feed(server, make_client, clock)
        bars = (await feed.warmup_candles({"ETH-PERP": 30}, width))["ETH-PERP"]
        asked = sum(1 for _, path, _ in server.calls if path == KLINES)
    assert asked == 2
    assert all(b.ts - b.open_time == width for b in bars)
    assert bars[-1].ts == START - START % width
    return [b.open_time for b in bars]


async def test_a_hole_an_answer_had_is_filled_by_asking_again(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    opens = await warm_up(make_client, holes=1)
    assert opens == [LIVE_FROM - i * MINUTE for i in range(30, 0, -1)]
    assert "hole" not in caplog.text


@pytest.mark.parametrize("width", [MINUTE, 2 * MINUTE])
async def test_a_hole_the_exchange_keeps_is_said_and_only_the_bars_after_it_are_learnt_from(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture, width: int
) -> None:
    opens = await warm_up(make_client, holes=2, width=width)
    assert opens[0] >= HOLE["until"]  # nothing from before the hole
    assert all(b - a == width for a, b in itertools.pairwise(opens))
    said = [r for r in caplog.records if "hole" in r.getMessage()]
    assert len(said) == 1 and said[0].levelname == "WARNING"
    text = said[0].getMessage()
    assert "ETH-PERP" in text and "3 candles" in text
    assert iso_utc(HOLE["from"]) in text and iso_utc(HOLE["until"]) in text
