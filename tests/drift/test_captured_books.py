"""A captured book is the book the bot saw (SPEC 14), also when the exchange's answer has
a level with quantity 0 or a price listed twice (ccxt passes both through). The capture
stores a book as levels by price, where quantity 0 means "removed": measured on main,
the bot traded on a best bid of quantity 0 that its replay never had, and on two levels
at one price that its replay merged into one. Now the feed drops an empty level (there
is nothing to trade there) and refuses a book with a price twice (it cannot be right:
one line, the feed is unhealthy for that poll), so the capture replays exactly."""

from pathlib import Path
from typing import Any

import pytest

from perps_bot.domain import BookSnapshot, MarketEvent
from perps_bot.feeds.exchange import ExchangeFeed
from perps_bot.feeds.replay import ReplayFeed
from perps_bot.orchestrator.capture import CapturingFeed
from perps_bot.storage.capture import CaptureWriter
from perps_emulator import EmulatorServer, Fault
from tests.live.live_helpers import ClientFactory, FakeClock, FakeSleep, exchange_cfg

pytestmark = pytest.mark.integration

ASKS = [["3000.5", "2.0"], ["3001.0", "3.0"]]


async def captured(
    emulator: EmulatorServer, make_client: ClientFactory, folder: Path, bids: list[list[str]]
) -> tuple[list[MarketEvent], list[MarketEvent], ExchangeFeed]:
    """Two polls of ETH, the first answering the order book `bids` (and ASKS): what the
    feed yielded, what its capture replays, and the feed."""
    emulator.inject(Fault("rewrite", method="GET", path="/fapi/v1/depth",
                          fields={"bids": bids, "asks": ASKS}))  # fmt: skip
    cfg = exchange_cfg(emulator, public_trades=False)
    clock = FakeClock()
    feed = ExchangeFeed(make_client(cfg, private=False), cfg, ["ETH-PERP"],
                        clock=clock, sleep=FakeSleep(clock))  # fmt: skip
    writer = CaptureWriter(folder, {"config": {}, "instruments": {}})
    capturing = CapturingFeed(feed, writer)
    await capturing.start()
    seen: list[MarketEvent] = []
    batches = capturing.batches()
    for _ in range(2):
        seen.extend(await anext(batches))
    await capturing.stop()
    writer.close()
    return seen, ReplayFeed(folder).events(), feed


def first_book(events: list[MarketEvent]) -> Any:
    return next(e for e in events if isinstance(e, BookSnapshot))


async def test_an_empty_level_is_not_in_the_book_the_bot_sees_nor_in_its_capture(
    emulator: EmulatorServer, make_client: ClientFactory, tmp_path: Path
) -> None:
    bids = [["3000.0", "0"], ["2999.5", "1.5"], ["2999.0", "0.000"]]
    seen, replayed, _ = await captured(emulator, make_client, tmp_path, bids)
    assert replayed == seen
    assert first_book(seen).bids == [(2999.5, 1.5)]


async def test_a_book_with_a_price_twice_is_refused_and_the_capture_holds_what_was_seen(
    emulator: EmulatorServer, make_client: ClientFactory, tmp_path: Path
) -> None:
    bids = [["3000.0", "1.0"], ["3000.0", "2.0"], ["2999.5", "1.5"]]
    seen, replayed, feed = await captured(emulator, make_client, tmp_path, bids)
    assert replayed == seen
    assert all(len({p for p, _ in e.bids}) == len(e.bids) for e in seen
               if isinstance(e, BookSnapshot))  # fmt: skip
    assert feed.errors == 1  # the refused answer, counted and logged
