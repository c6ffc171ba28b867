"""Closing a position above the exchange's largest market order (BTC-PERP: 120 BTC,
Binance's MARKET_LOT_SIZE) on a paper venue. Such a close used to be refused before it
existed (ABOVE_MAX_QUANTITY), so a position built from several entries could never be
closed at market: a flatten, a target of 0, a flip. It now goes out as several
reduce-only orders, each within the maximum, each with its own client id."""

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from perps_bot.domain import Order, OrderStatus, Side, close_open
from perps_bot.orchestrator.held_entries import HeldEntries
from perps_bot.orchestrator.runner import Run, RunResult, run_bot, run_bot_sync
from perps_bot.venues import OrderRejected
from tests.harness.limits import LOOSE_RISK
from tests.harness.scripted import ScriptedFeed, quotes
from tests.harness.venue import ScriptedVenue
from tests.orchestrator.test_one_truth import START_MS, _settings
from tests.orchestrator.test_portfolios import ETH, harness_settings, scripted
from tests.plans.helpers import write_plan

BTC = "BTC-PERP"


def big_account(tmp_path: Path, script: str) -> Any:
    """A dev run on BTC-PERP whose strategy targets `script`, with room for 300 BTC."""
    return _settings(
        tmp_path,
        account={"initial_balance": 1e9, "default_leverage": 10.0},
        strategy={
            "name": "tests.harness.scripted:ScriptedTargets",
            "params": {"symbol": BTC, "script": script},
        },
        risk=LOOSE_RISK,
    )


def orders_and_fills(result: RunResult) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with sqlite3.connect(result.db_path) as conn:
        orders = conn.execute(
            "SELECT client_id, side, size, reduce_only, status, correlation_id FROM orders"
            " WHERE run_id=? ORDER BY rowid",
            (result.run_id,),
        ).fetchall()
        fills = conn.execute(
            "SELECT client_id, side, size, position_after FROM fills WHERE run_id=? ORDER BY seq",
            (result.run_id,),
        ).fetchall()
    return orders, fills


def denials(result: RunResult) -> list[str]:
    with sqlite3.connect(result.db_path) as conn:
        rows = conn.execute("SELECT reason_code FROM denials WHERE run_id=?", (result.run_id,))
        return [r[0] for r in rows.fetchall()]


async def test_a_flatten_of_a_position_above_the_market_maximum_ends_flat(tmp_path: Path) -> None:
    """300 BTC built from three market entries of 100; the session's flatten asked for
    one sell of 300, which Binance refuses (-4005) and the bot refused before it existed:
    the position stayed. It now sells 3 x 100, reduce-only, and the run ends flat."""
    settings = big_account(tmp_path, "2:100,4:200,6:300")
    feed = ScriptedFeed(quotes(BTC, [60_000.0] * 400, start_ms=START_MS))
    closing: list[int] = []

    @contextlib.asynccontextmanager
    async def flatten_at_300(run: Run) -> AsyncIterator[None]:
        orchestrator = run.orchestrator

        async def watch() -> None:
            while orchestrator.ledger.position_size(BTC) < 300.0:
                await asyncio.sleep(0)
            closing.append(orchestrator.flatten(orchestrator.primary, "flatten (test)"))

        watcher = asyncio.create_task(watch())
        try:
            yield
        finally:
            watcher.cancel()

    result = await run_bot(settings, feed=feed, progress=False, attach=flatten_at_300)
    assert result.status == "completed" and closing == [1]
    orders, fills = orders_and_fills(result)
    sells = [o for o in orders if o[1] == "sell"]
    assert [(o[2], o[3], o[4]) for o in sells] == [(100.0, 1, "filled")] * 3, orders
    assert len({o[0] for o in sells}) == 3 and {o[5] for o in sells} == {sells[0][0]}
    assert [f[1:] for f in fills if f[1] == "sell"] == [
        ("sell", 100.0, 200.0), ("sell", 100.0, 100.0), ("sell", 100.0, 0.0)]  # fmt: skip
    assert "ABOVE_MAX_QUANTITY" not in denials(result)


def test_a_target_of_zero_and_a_flip_above_the_maximum_go_out_in_pieces(tmp_path: Path) -> None:
    """A strategy's target of 0 from 300 BTC: 3 x 100 reduce-only. Then a flip from 250
    to -50, a sell of 300: the close of 250 in three reduce-only orders within 120, then
    the entry of 50 short as an order of its own. Both were refused whole."""
    settings = big_account(tmp_path, "2:100,4:200,6:300,10:0,14:100,16:200,18:250,22:-50")
    feed = ScriptedFeed(quotes(BTC, [60_000.0] * 40, start_ms=START_MS))
    result = run_bot_sync(settings, feed=feed, progress=False)
    assert result.status == "completed"
    orders, fills = orders_and_fills(result)
    sells = [(o[2], o[3]) for o in orders if o[1] == "sell"]
    assert sells == [(100.0, 1)] * 3 + [(83.334, 1), (83.333, 1), (83.333, 1), (50.0, 0)]
    assert fills[-1][3] == pytest.approx(-50.0), fills
    assert all(o[4] == "filled" for o in orders), orders
    assert "ABOVE_MAX_QUANTITY" not in denials(result)


def test_an_entry_above_the_maximum_is_still_refused(tmp_path: Path) -> None:
    """An entry is not split: an order size above what the exchange takes at once is a
    profile to fix (the log says to lower strategy.order_size)."""
    settings = big_account(tmp_path, "2:150")
    feed = ScriptedFeed(quotes(BTC, [60_000.0] * 10, start_ms=START_MS))
    result = run_bot_sync(settings, feed=feed, progress=False)
    orders, fills = orders_and_fills(result)
    assert (orders, fills) == ([], [])
    assert denials(result) == ["ABOVE_MAX_QUANTITY"]


def test_a_stop_above_the_maximum_closes_the_position_in_pieces(tmp_path: Path) -> None:
    """A plan's 300 BTC limit entry (a limit order may be 1000) with its stop: the paper
    venue triggered one stop of 300 and filled it at market, which Binance refuses (a
    stop becomes a market order: MARKET_LOT_SIZE, 120). The stop and the take-profit are
    now three orders each, of 100; the stops fill, the take-profits are cancelled."""
    plan = write_plan(tmp_path / "plan.csv", [
        {"id": "r1", "side": "long", "size": 300, "entry": "limit", "limit_price": 60_001,
         "stop": 59_000, "take_profit": 62_000}])  # fmt: skip
    settings = big_account(tmp_path, "")
    strategy = {"name": "plan", "params": {"file": str(plan), "reload_interval": 0}}
    settings = settings.model_copy(update={"strategy": settings.strategy.model_copy(
        update=strategy)})  # fmt: skip
    prices = [60_000.0] * 10 + [58_900.0] * 10
    result = run_bot_sync(settings, feed=ScriptedFeed(quotes(BTC, prices, start_ms=START_MS)),
                          progress=False)  # fmt: skip
    assert result.status == "completed"
    with sqlite3.connect(result.db_path) as conn:
        protective = conn.execute(
            "SELECT order_type, size, status, reason FROM orders WHERE run_id=? AND"
            " order_type != 'limit' ORDER BY rowid", (result.run_id,)).fetchall()  # fmt: skip
        fills = conn.execute(
            "SELECT side, size, position_after, reason FROM fills WHERE run_id=? ORDER BY seq",
            (result.run_id,),
        ).fetchall()
    assert max(p[1] for p in protective) <= 120.0, protective
    filled = [p for p in protective if p[2] == "filled"]
    assert filled == [("stop_market", 100.0, "filled", "stop")] * 3, protective
    assert [p[2] for p in protective if p[0] == "take_profit_market"][-3:] == ["canceled"] * 3
    assert sum(f[1] for f in fills if f[0] == "buy") == 300.0
    assert [f for f in fills if f[0] == "sell"] == [
        ("sell", 100.0, 200.0, "stop"), ("sell", 100.0, 100.0, "stop"),
        ("sell", 100.0, 0.0, "stop")]  # fmt: skip


class RefusingSecondClose(ScriptedVenue):
    """Fills market orders at the next event; refuses the second reduce-only sell."""

    closes: int = 0

    async def submit(self, order: Order) -> Order:
        if order.reduce_only and order.side is Side.SELL:
            self.closes += 1
            if self.closes == 2:
                self.refusals.append(OrderRejected(None, "scripted refusal"))
        return await super().submit(order)


async def test_a_flip_whose_close_is_refused_in_part_does_not_open_the_other_side(
    tmp_path: Path,
) -> None:
    """Long 250, target short 50: the close goes out as three orders and the short entry
    as a fourth. The venue refuses the second close: sending the entry would leave the
    account long 83.333 less 50, neither the position held nor the one asked for. It is
    withheld, with a denial and a warning; the account holds what the closes left."""
    settings = big_account(tmp_path, "2:100,4:200,6:250,10:-50")
    venue = RefusingSecondClose([])
    feed = ScriptedFeed(quotes(BTC, [60_000.0] * 20, start_ms=START_MS))
    result = await run_bot(settings, feed=feed, venue=venue, progress=False)
    assert result.status == "completed"
    sent = [(o.side, o.size, o.reduce_only) for o in venue.submitted if o.side is Side.SELL]
    assert sent == [(Side.SELL, 83.334, True), (Side.SELL, 83.333, True)], venue.submitted
    orders, fills = orders_and_fills(result)
    assert [o[2] for o in orders if o[1] == "sell" and not o[3]] == [], "the entry exists"
    assert fills[-1][3] == pytest.approx(83.333), fills
    assert sorted(denials(result)) == ["VENUE_REJECTED", "VENUE_REJECTED"]
    log = (Path(settings.run.log_dir) / "perps_bot.log").read_text()
    assert "the entry of a flip, not sent: the close before it did not all go out" in log


def test_each_order_of_a_split_close_counts_against_the_order_rate(tmp_path: Path) -> None:
    """max_orders_per_minute 5: three entries, then a close of 300 that goes out as three
    orders (six orders in the minute), then an entry of 50. The gate counted the close as
    one order, so the entry passed and seven orders went out in a minute capped at five;
    each order that goes out now counts, and the entry is denied (ORDER_RATE_LIMIT)."""
    settings = big_account(tmp_path, "2:100,4:200,6:300,10:0,14:50")
    settings = settings.model_copy(update={"risk": settings.risk.model_copy(
        update={"max_orders_per_minute": 5})})  # fmt: skip
    feed = ScriptedFeed(quotes(BTC, [60_000.0] * 30, start_ms=START_MS))
    result = run_bot_sync(settings, feed=feed, progress=False)
    assert result.status == "completed"
    orders, _ = orders_and_fills(result)
    assert [(o[1], o[2]) for o in orders] == [("buy", 100.0)] * 3 + [("sell", 100.0)] * 3
    assert denials(result) == ["ORDER_RATE_LIMIT"]


async def test_each_order_of_a_split_close_counts_against_the_accounts_order_rate(
    tmp_path: Path,
) -> None:
    """Two portfolios, one account capped at 5 orders a minute: the first builds 300 BTC
    in three entries and closes it in three orders; the second's entry on ETH after that
    is a seventh order in the minute. The account counted the close as one order and
    let it through; it is denied now (account: ORDER_RATE_LIMIT)."""
    settings = harness_settings(
        tmp_path,
        scripted("big", "2:100,4:200,6:300,10:0"),
        scripted("eth", "14:1", symbol=ETH),
        account={"initial_balance": 1e9, "default_leverage": 10.0},
        risk=LOOSE_RISK | {"max_orders_per_minute": 5},
    )
    events = quotes(BTC, [60_000.0] * 30, start_ms=START_MS) + quotes(
        ETH, [3_000.0] * 30, start_ms=START_MS + 1
    )
    feed = ScriptedFeed(sorted(events, key=lambda e: e.ts))
    result = await run_bot(settings, feed=feed, progress=False)
    assert result.status == "completed"
    with sqlite3.connect(result.db_path) as conn:
        sent = conn.execute("SELECT symbol, side, size FROM orders ORDER BY rowid").fetchall()
        denied = conn.execute("SELECT reason_code, detail FROM denials").fetchall()
    assert sent == [(BTC, "buy", 100.0)] * 3 + [(BTC, "sell", 100.0)] * 3, sent
    assert [(code, detail.startswith("account:")) for code, detail in denied] == [
        ("ORDER_RATE_LIMIT", True)]  # fmt: skip


class ExpiringSecondClose(ScriptedVenue):
    """Fills market orders at the next event, but the second reduce-only sell only in
    part (40 of it): the rest expires, as an IOC or market order on a thin book does."""

    closes: int = 0

    def on_market(self, event: Any) -> Any:
        thin = [o for o in self._open.values() if o.reduce_only and o.side is Side.SELL]
        fills = []
        for order in thin:
            self.closes += 1
            if self.closes == 2:
                fills.append(self.fill(order, 40.0, 60_000.0, event.ts))
                self._open.pop(order.client_id)
                update = close_open(order, OrderStatus.EXPIRED, event.ts, "expired")
                assert update is not None
                self.updates.append(update)
        return [*fills, *super().on_market(event)]


def entry_sells(venue: ScriptedVenue) -> list[tuple[float, int]]:
    return [(o.size, o.created_ts) for o in venue.submitted if o.side is Side.SELL
            and not o.reduce_only]  # fmt: skip


async def test_the_entry_of_a_flip_waits_until_its_split_close_has_filled(tmp_path: Path) -> None:
    """Long 250, target short 50: the entry was sent in the same batch as the three
    closes, before any of them had filled (a close expiring in part left the account
    neither flat nor short). It goes out now once the closes have filled, the position
    flat, at a later event."""
    settings = big_account(tmp_path, "2:100,4:200,6:250,10:-50")
    venue = ScriptedVenue([])
    feed = ScriptedFeed(quotes(BTC, [60_000.0] * 20, start_ms=START_MS))
    result = await run_bot(settings, feed=feed, venue=venue, progress=False)
    assert result.status == "completed"
    closes = [o.created_ts for o in venue.submitted if o.side is Side.SELL and o.reduce_only]
    entries = entry_sells(venue)
    assert len(closes) == 3 and [size for size, _ in entries] == [50.0], venue.submitted
    assert entries[0][1] > max(closes), "the entry went out before the close had filled"
    _, fills = orders_and_fills(result)
    assert fills[-1][3] == pytest.approx(-50.0), fills


async def test_a_flip_whose_split_close_expires_in_part_does_not_send_the_entry(
    tmp_path: Path,
) -> None:
    """The second close fills 40 of 83.333 and the rest expires: the entry of 50 short
    went out all the same, leaving the account long 43.333 less 50 (short 6.667),
    neither what was held nor what was asked for. The account now holds what the closes
    left, long 43.333; the entry is denied under its own client id, with a warning."""
    settings = big_account(tmp_path, "2:100,4:200,6:250,10:-50")
    venue = ExpiringSecondClose([])
    feed = ScriptedFeed(quotes(BTC, [60_000.0] * 20, start_ms=START_MS))
    result = await run_bot(settings, feed=feed, venue=venue, progress=False)
    assert result.status == "completed"
    assert entry_sells(venue) == [], "the entry went out"
    _, fills = orders_and_fills(result)
    assert fills[-1][3] == pytest.approx(250.0 - 83.334 - 40.0 - 83.333), fills
    with sqlite3.connect(result.db_path) as conn:
        denied = conn.execute("SELECT reason_code, detail, correlation_id FROM denials"
                              " WHERE run_id=?", (result.run_id,)).fetchall()  # fmt: skip
    closes = {o.client_id for o in venue.submitted}
    assert len(denied) == 1 and denied[0][2] not in closes, (denied, closes)
    assert "the close before it left the position" in denied[0][1], denied
    log = (Path(settings.run.log_dir) / "perps_bot.log").read_text()
    assert "the entry of a flip, not sent" in log


class RefusingTheEntry(ScriptedVenue):
    """Fills market orders at the next event; refuses the first sell that is no close."""

    async def submit(self, order: Order) -> Order:
        if not order.reduce_only and order.side is Side.SELL and not self.refusals:
            self.refusals.append(OrderRejected(None, "scripted refusal of the entry"))
        return await super().submit(order)


def denial_ids(result: RunResult) -> list[tuple[str, str]]:
    with sqlite3.connect(result.db_path) as conn:
        rows = conn.execute("SELECT reason_code, correlation_id FROM denials WHERE run_id=?",
                            (result.run_id,))  # fmt: skip
        return [(r[0], r[1]) for r in rows.fetchall()]


async def test_a_denied_flip_entry_is_recorded_under_its_own_client_id(tmp_path: Path) -> None:
    """Long 250 to short 50: closes pb-4, pb-5, pb-6, entry pb-7. The venue refuses the
    entry: its denial was recorded under pb-4, the first close's id (an order that
    filled), so the denial pointed at the wrong order. It carries pb-7 now."""
    settings = big_account(tmp_path, "2:100,4:200,6:250,10:-50")
    venue = RefusingTheEntry([])
    feed = ScriptedFeed(quotes(BTC, [60_000.0] * 20, start_ms=START_MS))
    result = await run_bot(settings, feed=feed, venue=venue, progress=False)
    orders, _ = orders_and_fills(result)
    entry = [o[0] for o in orders if o[1] == "sell" and not o[3]]
    assert entry == ["pb-7"] and denial_ids(result) == [("VENUE_REJECTED", "pb-7")], orders


def test_a_flip_entry_the_order_rate_denies_is_recorded_under_its_own_id(tmp_path: Path) -> None:
    """max_orders_per_minute 6: three entries and a close in three orders fill the
    minute; the flip's entry was approved with the close and went out as a seventh
    order. The gate checks it on its own now that it waits for the close, and its
    denial carries its own client id (pb-7), not the close's (pb-4)."""
    settings = big_account(tmp_path, "2:100,4:200,6:250,10:-50")
    settings = settings.model_copy(update={"risk": settings.risk.model_copy(
        update={"max_orders_per_minute": 6})})  # fmt: skip
    feed = ScriptedFeed(quotes(BTC, [60_000.0] * 20, start_ms=START_MS))
    result = run_bot_sync(settings, feed=feed, progress=False)
    orders, _ = orders_and_fills(result)
    assert len(orders) == 6, orders
    assert denial_ids(result) == [("ORDER_RATE_LIMIT", "pb-7")]


async def test_a_checkpoint_keeps_the_entry_a_flip_holds_back(tmp_path: Path) -> None:
    """A paper run checkpointed while the entry of a flip waits for its split close (the
    closes sent, not filled yet) and resumed in a new process: the held entry was not
    in the checkpoint, so the resumed run ended flat where the uninterrupted one ends
    short 50. The loop's state keeps it now (here: restored into an order flow that
    lost it, as a new process's has)."""
    settings = big_account(tmp_path, "2:100,4:200,6:250,10:-50")
    feed = ScriptedFeed(quotes(BTC, [60_000.0] * 20, start_ms=START_MS))
    kept: list[object] = []

    @contextlib.asynccontextmanager
    async def checkpoint_while_held(run: Run) -> AsyncIterator[None]:
        orchestrator = run.orchestrator
        flow = orchestrator.primary.flow

        async def watch() -> None:
            while not flow.held.by_symbol:
                await asyncio.sleep(0)
            kept.append(orchestrator.loop_state())
            flow.held = HeldEntries(flow.rec, flow.instruments)  # a new process's
            orchestrator.restore_loop_state(kept[0])

        watcher = asyncio.create_task(watch())
        try:
            yield
        finally:
            watcher.cancel()

    result = await run_bot(settings, feed=feed, progress=False, attach=checkpoint_while_held)
    assert result.status == "completed" and kept
    _, fills = orders_and_fills(result)
    assert fills[-1][3] == pytest.approx(-50.0), fills


def test_a_newer_target_replaces_the_entry_a_flip_holds_back(tmp_path: Path) -> None:
    """Long 250, target short 50, then (while the entry waits for the close) a target of
    0: the held entry is dropped, not sent after the close; the run ends flat. A target
    of short 50 again keeps it: the run ends short 50, with one entry."""
    for script, last, entries in (("10:-50,11:0", 0.0, []), ("10:-50,11:-50", -50.0, [50.0])):
        settings = big_account(tmp_path / script, "2:100,4:200,6:250," + script)
        venue = ScriptedVenue([])
        feed = ScriptedFeed(quotes(BTC, [60_000.0] * 20, start_ms=START_MS))
        result = run_bot_sync(settings, feed=feed, venue=venue, progress=False)
        _, fills = orders_and_fills(result)
        assert fills[-1][3] == pytest.approx(last), (script, fills)
        assert [size for size, _ in entry_sells(venue)] == entries, script
