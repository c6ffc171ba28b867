"""A live run's replay (SPEC 14) does not show the paper venue the trades the run's own
market orders printed: they are in the captured public tape (the exchange publishes
every execution), and paper took them for other participants' trades. Measured on
main: the live run's market sell of 0.1 printed 99.97 on the tape; in the replay that
print filled the probe's resting limit buy at 99.97 (touch: a trade at its price), a
fill live could never have had from its own order. Now the prints that the run's own
taker fills explain (same side, size and price, printed between the request leaving
and the fill being seen) are taken out of what the paper venue matches against, and
a book's `last` that was such a print is the market's trade before it; another
participant's trade of the same size at another time stays and fills."""

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
CONFIG: dict[str, dict[str, Any]] = {
    "strategy": {"name": PROBE, "params": {"every": 3}, "timeframe": "1m",
                 "order_size": {"ETH-PERP": 0.1}},
    "run": {"symbols": ["ETH-PERP"]},
    "mock": {"fill_probability": 1.0, "slippage_bps": 0.0, "fill_model": "touch"},
}  # fmt: skip
OTHERS_EARLIER = PublicTrade(1_500, 99.97, 0.1, Side.SELL)
OWN = PublicTrade(4_500, 99.97, 0.1, Side.SELL)
OTHERS_LATER = PublicTrade(5_600, 99.97, 0.1, Side.SELL)


class Clock:
    now = 0

    def __call__(self) -> int:
        return self.now


def book(i: int, *trades: PublicTrade, last: float = 99.98) -> BookSnapshot:
    return BookSnapshot(i * 1_000, "ETH-PERP", BIDS, ASKS, last=last, mark=99.98,
                        trades=trades)  # fmt: skip


def capture(
    folder: Path, monkeypatch: pytest.MonkeyPatch, earlier: PublicTrade = OTHERS_EARLIER
) -> None:
    """Six books; the run's market sell, sent at 4 400, printed at 4 500 and was seen
    filled at 4 520; another participant sold the same 0.1 at 99.97 at 1 500 (`earlier`)
    and 5 600. Each book's `last` is the tape's latest print."""
    clock = Clock()
    monkeypatch.setattr(capture_module, "wall_ms", clock)
    writer = CaptureWriter(folder, {"kind": "live", "config": CONFIG, "instruments": {}})
    trades = {2: (earlier,), 5: (OWN,), 6: (OTHERS_LATER,)}
    for i in range(1, 5):
        clock.now = i * 1_000
        writer.events([book(i, *trades.get(i, ()), last=earlier.price if i > 1 else 99.98)])
    sell = Order("live-1", "ETH-PERP", Side.SELL, 0.1, OrderType.MARKET, None, False, 4_400, "o")
    clock.now = 4_400
    writer.order_sent(sell)
    transition(sell, OrderStatus.ACCEPTED, 4_520, "accepted")
    filled = fill_of(sell, 4_520, 0.1, 99.97, 0.005, Liquidity.TAKER)
    record_fill(sell, 0.1, 99.97, 4_520)
    clock.now = 4_520
    writer.order_acknowledged(sell)
    writer.fill(filled)
    for i in (5, 6):
        clock.now = i * 1_000
        writer.events([book(i, *trades.get(i, ()), last=99.97)])
    writer.close()


def test_the_runs_own_prints_do_not_fill_the_replays_resting_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    capture(tmp_path / "live", monkeypatch)
    fills = replayed_fills(tmp_path / "live", tmp_path / "live.sqlite")
    assert fills[:1] == [(6_000, "buy", 0.1, 99.97, "maker")]  # the other's sell, not its own


def test_only_the_own_print_leaves_the_tape_the_paper_venue_sees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    capture(tmp_path / "live", monkeypatch)
    feed = ReplayFeed(tmp_path / "live")
    view = feed.matching_view()
    assert view is not None
    books = [e for e in feed.events() if isinstance(e, BookSnapshot)]
    assert books[4].trades == (OWN,)  # the strategy's view: as captured
    matched = [view(b) for b in books]
    assert [m.trades for m in matched] == [(), (OTHERS_EARLIER,), (), (), (), (OTHERS_LATER,)]
    assert [m.bids for m in matched] == [b.bids for b in books]


def test_a_last_the_own_print_set_is_the_others_trade_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop on the paper venue triggers on `last`: the run's own print must not move it."""
    capture(tmp_path / "live", monkeypatch, PublicTrade(1_500, 99.96, 0.1, Side.SELL))
    feed = ReplayFeed(tmp_path / "live")
    view = feed.matching_view()
    assert view is not None
    books = [e for e in feed.events() if isinstance(e, BookSnapshot)]
    assert [b.last for b in books] == [99.98, 99.96, 99.96, 99.96, 99.97, 99.97]
    matched = [view(b) for b in books]
    assert [m.last for m in matched] == [99.98, 99.96, 99.96, 99.96, 99.96, 99.97]


def test_an_earlier_book_of_another_symbol_does_not_take_anothers_print_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A multi-symbol capture whose books are not all in time order (another symbol's
    book stamped a little earlier, a clock stepped back): the run's own print is taken
    out once, and another participant's sell of the same size right after it stays."""
    clock = Clock()
    monkeypatch.setattr(capture_module, "wall_ms", clock)
    folder = tmp_path / "live"
    writer = CaptureWriter(folder, {"kind": "live", "config": CONFIG, "instruments": {}})
    sell = Order("live-1", "ETH-PERP", Side.SELL, 0.1, OrderType.MARKET, None, False, 4_400, "o")
    clock.now = 4_400
    writer.order_sent(sell)
    clock.now = 4_520
    writer.order_acknowledged(sell)
    writer.fill(fill_of(sell, 4_520, 0.1, 99.97, 0.005, Liquidity.TAKER))
    other = PublicTrade(5_300, 99.97, 0.1, Side.SELL)
    btc = BookSnapshot(4_990, "BTC-PERP", [(50_000.0, 1.0)], [(50_001.0, 1.0)])
    writer.events([book(5, OWN), btc, BookSnapshot(5_400, "ETH-PERP", BIDS, ASKS,
                                                    last=99.97, trades=(other,))])  # fmt: skip
    writer.close()
    view = ReplayFeed(folder).matching_view()
    assert view is not None
    matched = [view(e) for e in ReplayFeed(folder).events() if isinstance(e, BookSnapshot)]
    assert [m.trades for m in matched] == [(), (), (other,)]


def test_a_stop_sent_long_before_it_triggered_takes_its_own_print_not_an_earlier_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's stop-loss was sent at 1 000 and triggered at 30 000: another
    participant's sell of the same size and price at 5 000 is not the stop's print."""
    clock = Clock()
    monkeypatch.setattr(capture_module, "wall_ms", clock)
    folder = tmp_path / "live"
    writer = CaptureWriter(folder, {"kind": "live", "config": CONFIG, "instruments": {}})
    stop = Order("live-stop", "ETH-PERP", Side.SELL, 0.1, OrderType.STOP_MARKET, None, True,
                 1_000, "o", trigger_price=99.975)  # fmt: skip
    clock.now = 1_000
    writer.order_sent(stop)
    writer.order_acknowledged(stop)
    earlier = PublicTrade(5_000, 99.97, 0.1, Side.SELL)
    own = PublicTrade(30_000, 99.97, 0.1, Side.SELL)
    writer.events([book(6, earlier), book(31, own)])
    clock.now = 30_500
    writer.fill(fill_of(stop, 30_500, 0.1, 99.97, 0.005, Liquidity.TAKER))
    writer.close()
    view = ReplayFeed(folder).matching_view()
    assert view is not None
    matched = [view(e) for e in ReplayFeed(folder).events() if isinstance(e, BookSnapshot)]
    assert [m.trades for m in matched] == [(earlier,), ()]
