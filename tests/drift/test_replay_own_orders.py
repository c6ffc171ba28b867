"""A live run's replay (SPEC 14) does not match the paper venue against the run's own
resting orders, which its captured books show (they were on the exchange). Measured on
main: the live run's limit buy of 0.1 at 99.97 joined the queue behind the 5.0 others
had there; a sell of 5.1 at 99.97 filled it. Its replay (`--fill-model queue`) queued
the paper twin behind 5.1 (the 5.0 and the live order itself), so the same sell left it
at the front, unfilled, and drift counted a fill live had as one paper missed. Now the
quantity the live order still had is taken off its level, from its acknowledgement to
its end as the capture's order rows tell, in what the paper venue matches against; a
dry run's capture (its orders never reached the exchange) is replayed as it was."""

from pathlib import Path
from typing import Any

import pytest

from perps_bot.domain import (
    BookSnapshot,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    PublicTrade,
    Side,
    fill_of,
    record_fill,
    transition,
)
from perps_bot.feeds.replay import ReplayFeed
from perps_bot.storage import capture as capture_module
from perps_bot.storage.capture import CaptureWriter
from tests.drift.dry import PROBE
from tests.drift.replayed import replayed_fills

BIDS, ASKS = [(99.97, 5.0), (99.96, 5.0)], [(99.99, 5.0), (100.0, 5.0)]
WITH_OWN = [(99.97, 5.1), (99.96, 5.0)]  # the live order's 0.1 joined the 5.0
CONFIG: dict[str, dict[str, Any]] = {
    "strategy": {"name": PROBE, "params": {"every": 3}, "timeframe": "1m",
                 "order_size": {"ETH-PERP": 0.1}},
    "run": {"symbols": ["ETH-PERP"]},
    "mock": {"fill_probability": 1.0, "slippage_bps": 0.0, "fill_model": "queue"},
}  # fmt: skip


class Clock:
    now = 0

    def __call__(self) -> int:
        return self.now


def book(i: int, bids: list[tuple[float, float]], *trades: PublicTrade) -> BookSnapshot:
    return BookSnapshot(i * 1_000, "ETH-PERP", bids, ASKS, last=99.98, mark=99.98,
                        trades=trades)  # fmt: skip


def capture(folder: Path, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Five books; the run's limit buy at the best bid, sent at the third, rests at the
    fourth and is filled by the sell of 5.1 the fifth carries."""
    clock = Clock()
    monkeypatch.setattr(capture_module, "wall_ms", clock)
    writer = CaptureWriter(folder, {"kind": kind, "config": CONFIG, "instruments": {}})
    for i in (1, 2, 3):
        clock.now = i * 1_000
        writer.events([book(i, BIDS)])
    own = Order("live-1", "ETH-PERP", Side.BUY, 0.1, OrderType.LIMIT, 99.97, False, 3_000, "o")
    clock.now = 3_010
    writer.order_sent(own)
    accepted = transition(own, OrderStatus.ACCEPTED, 3_050, "accepted")
    clock.now = 3_050
    writer.order_acknowledged(own)
    clock.now = 3_060
    writer.order_update(accepted)
    clock.now = 4_000
    writer.events([book(4, WITH_OWN)])
    clock.now = 5_000
    writer.events([book(5, [(99.96, 5.0)], PublicTrade(4_500, 99.97, 5.1, Side.SELL))])
    clock.now = 5_010
    writer.fill(fill_of(own, 4_500, 0.1, 99.97, 0.0, Liquidity.MAKER))
    writer.order_update(record_fill(own, 0.1, 99.97, 4_500))
    writer.close()


def test_a_live_replay_does_not_queue_behind_the_runs_own_resting_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    capture(tmp_path / "live", "live", monkeypatch)
    fills = replayed_fills(tmp_path / "live", tmp_path / "live.sqlite")
    assert fills == [(5_000, "buy", 0.1, 99.97, "maker")]  # as the live order was


def test_the_own_quantity_is_off_only_while_it_rested_and_only_for_the_venue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    capture(tmp_path / "live", "live", monkeypatch)
    feed = ReplayFeed(tmp_path / "live")
    view = feed.matching_view()
    assert view is not None
    books = [e for e in feed.events() if isinstance(e, BookSnapshot)]
    assert [b.bids for b in books][3] == WITH_OWN  # the strategy's view: as captured
    matched = [view(b) for b in books]
    assert [b.bids for b in matched] == [BIDS, BIDS, BIDS, BIDS, [(99.96, 5.0)]]
    assert matched[4].trades == books[4].trades


def test_a_dry_run_capture_is_replayed_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    capture(tmp_path / "dry", "dry_run", monkeypatch)
    assert ReplayFeed(tmp_path / "dry").matching_view() is None
    assert replayed_fills(tmp_path / "dry", tmp_path / "dry.sqlite") == []
