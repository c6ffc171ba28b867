"""A resumed replay of a live capture (SPEC 9, 14) matches against the same books as an
uninterrupted one. The paper venue's matching input (feeds.replay_prints) learns the
run's own prints as the events go by: a book whose `last` an own print set shows the
others' trade before it. A resumed replay built that input afresh and skipped the
events before its checkpoint without showing it them, so after the resume a `last` the
run's own sell set stayed (here 99.97 instead of the others' 99.96, which a paper stop
triggers on). The skipped events now go through the matching input too."""

import asyncio
from pathlib import Path

import pytest

from perps_bot.domain import (
    BookSnapshot,
    Liquidity,
    MarketEvent,
    Order,
    OrderType,
    PublicTrade,
    Side,
    fill_of,
)
from perps_bot.feeds.replay import ReplayFeed
from perps_bot.storage import capture as capture_module
from perps_bot.storage.capture import CaptureWriter
from tests.drift.test_replay_own_prints import ASKS, BIDS, CONFIG, Clock

OTHERS = PublicTrade(1_500, 99.96, 0.1, Side.SELL)
OWN = PublicTrade(3_500, 99.97, 0.1, Side.SELL)


def _capture(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Six books; the others sold at 99.96 (book 2), the run's market sell printed 99.97
    (book 4); books 5 and 6 carry no trade, their `last` the own print's."""
    clock = Clock()
    monkeypatch.setattr(capture_module, "wall_ms", clock)
    writer = CaptureWriter(folder, {"kind": "live", "config": CONFIG, "instruments": {}})
    sell = Order("live-1", "ETH-PERP", Side.SELL, 0.1, OrderType.MARKET, None, False, 3_400, "o")
    clock.now = 3_400
    writer.order_sent(sell)
    clock.now = 3_520
    writer.order_acknowledged(sell)
    writer.fill(fill_of(sell, 3_520, 0.1, 99.97, 0.005, Liquidity.TAKER))
    trades = {2: (OTHERS,), 4: (OWN,)}
    lasts = {1: 99.98, 2: 99.96, 3: 99.96}
    writer.events([BookSnapshot(i * 1_000, "ETH-PERP", BIDS, ASKS, last=lasts.get(i, 99.97),
                                mark=99.98, trades=trades.get(i, ()))
                   for i in range(1, 7)])  # fmt: skip
    writer.close()


def _matched(folder: Path, skip: int) -> list[MarketEvent]:
    """What the paper venue matches against, from the feed as a run (resumed after
    `skip` events when > 0) takes it: the matching view made at wiring, then the
    checkpoint's feed state, then the batches."""
    feed = ReplayFeed(folder, batch_size=2)
    view = feed.matching_view()
    assert view is not None
    if skip:
        feed.restore_state(skip)

    async def run() -> list[MarketEvent]:
        return [view(event) async for batch in feed.batches() for event in batch]

    return asyncio.run(run())


def test_a_resumed_replay_matches_against_the_books_of_an_uninterrupted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _capture(tmp_path / "live", monkeypatch)
    whole = _matched(tmp_path / "live", 0)
    lasts = [b.last for b in whole if isinstance(b, BookSnapshot)]
    assert lasts == [99.98, 99.96, 99.96, 99.96, 99.96, 99.96]
    for skip in range(1, 6):
        assert _matched(tmp_path / "live", skip) == whole[skip:], skip
