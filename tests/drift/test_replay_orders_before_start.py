"""A live run's replay (SPEC 14) takes the run's own resting orders out of the books the
paper venue matches against, the limit orders it found resting on the exchange at its
start too (a restarted live run goes on with those it left). Measured on main: the
capture recorded only the orders the run sent, so a limit buy left by an earlier run
(adopted at the start's reconciliation) stayed in the captured bid level: the paper
venue queued behind it and its market sells filled against it, the bot's own liquidity.
Now the capture records each order found open that the run did not send (`open` rows,
with what it had executed), and the replay takes its remaining quantity off its level
while it rests."""

from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import load_settings
from perps_bot.domain import BookSnapshot, Order, OrderStatus, OrderType, Side
from perps_bot.feeds.replay import ReplayFeed, order_rows
from perps_bot.orchestrator.runner import Run
from perps_bot.storage.capture import CaptureWriter
from perps_emulator import EmulatorServer
from perps_emulator.flow import FlowParams
from tests.drift.test_replay_own_orders import capture as run_capture
from tests.live.live_helpers import API_KEY, API_SECRET, UNTIL_S, exchange_cfg, run_until

pytestmark = pytest.mark.integration

SIZE = 0.01


def _books_seen(run: Run) -> bool:
    return run.capture is not None and run.capture.counts["books"] >= 4


async def left_resting(
    server: EmulatorServer, make_client: Any, *, level: int = 2, client_id: str = "earlierrun1"
) -> float:
    """A limit buy of SIZE at bid `level` (0: the best), placed before the run (an
    earlier run's, `client_id`)."""
    client = make_client(exchange_cfg(server), private=True)
    await client.set_margin_mode("isolated", "ETH/USDT:USDT")  # the run's, set before
    book = await client.fetch_order_book("ETH/USDT:USDT")
    price = float(book["bids"][level][0])
    await client.create_order("ETH/USDT:USDT", "limit", "buy", SIZE, price,
                              {"newClientOrderId": client_id})  # fmt: skip
    return price


async def test_orders_resting_from_before_the_start_are_off_the_replays_books(
    in_repo: Path, run_dirs: dict[str, str], tmp_path: Path, make_client: Any
) -> None:
    db = str(tmp_path / "canary.sqlite")
    async with EmulatorServer(symbols=("ETHUSDT",), seed=5, tick_interval_s=0.2,
                              microstructure=True, flow=FlowParams(trades_per_step=0.0),
                              volatility=1e-9) as server:  # fmt: skip
        price = await left_resting(server, make_client)
        settings = load_settings("canary", {
            "run": {"duration": f"{UNTIL_S}s", "live_view": False, "database": db, **run_dirs},
            "exchange": {"base_url": server.base_url, "poll_interval": "100ms",
                         "api_key": API_KEY, "api_secret": API_SECRET},
            "strategy": {"name": "tests.drift.drift_strategy:DriftProbe",
                         "params": {"every": 1_000_000}},
        })  # fmt: skip
        live = await run_until(settings, _books_seen)
    assert live.status == "completed"
    folder = Path(run_dirs["data_dir"]) / "captures" / live.run_id
    rows = [r for r in order_rows(folder) if r["client_id"] == "earlierrun1"]
    assert [(r["step"], r["price"], r["size"]) for r in rows][:1] == [("open", price, SIZE)]
    feed = ReplayFeed(folder)
    view = feed.matching_view()
    assert view is not None
    books = [e for e in feed.events() if isinstance(e, BookSnapshot)]
    compared = [(dict(b.bids)[price], dict(view(b).bids).get(price)) for b in books
                if price in dict(b.bids)]  # fmt: skip
    assert compared and all(off == pytest.approx(shown - SIZE) for shown, off in compared)


def test_the_quantity_an_adopted_order_had_executed_is_not_taken_off_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An order found partly executed rests with the rest: that is what comes off."""
    folder = tmp_path / "live"
    run_capture(folder, "live", monkeypatch)  # the run's own order at 99.97, as before
    writer = CaptureWriter(folder, {"kind": "live", "config": {}, "instruments": {}},
                           resumed=True)  # fmt: skip
    found = Order("left-1", "ETH-PERP", Side.SELL, 4.0, OrderType.LIMIT, 99.99, False, 0, "x",
                  status=OrderStatus.PARTIALLY_FILLED, filled=3.0)  # fmt: skip
    writer.open_orders([found])
    writer.close()
    view = ReplayFeed(folder).matching_view()
    assert view is not None
    book = BookSnapshot(6_000, "ETH-PERP", [(99.96, 5.0)], [(99.99, 5.0), (100.0, 5.0)])
    assert view(book).asks == [(99.99, 4.0), (100.0, 5.0)]
