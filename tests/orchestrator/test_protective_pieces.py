"""A position above the exchange's largest market order is protected by several stops
and take-profits within it (orchestrator.protection, Instrument.pieces); those pieces
cover the position together, and a sync that finds them working leaves them alone."""

import sqlite3
from pathlib import Path

from perps_bot.domain import Instrument, OrderType
from perps_bot.orchestrator.protection import Protector
from perps_bot.orchestrator.runner import run_bot_sync
from tests.harness.scripted import ScriptedFeed, quotes
from tests.orchestrator.test_above_max_closes import BTC, big_account
from tests.orchestrator.test_one_truth import START_MS
from tests.plans.helpers import write_plan

ETH = Instrument("ETH-PERP", "ETH/USDT:USDT", 0.01, 0.001, 0.001, 20.0, ((0.0, 0.005, 0.0),),
                 2.0, 5.0, max_quantity=10_000.0, max_market_quantity=2_000.0)  # fmt: skip


class Book:
    def __init__(self, held: float) -> None:
        self.held = held

    def position_size(self, symbol: str) -> float:
        return self.held


def test_pieces_that_add_up_to_the_position_cover_it_whatever_the_float_sum() -> None:
    """12000.59 ETH long: seven pieces of each kind (1714.37 each), whose float sum is
    12000.589999999997. The pieces were taken for too small (an absolute 1e-12
    tolerance), so every fill and every reconciliation cancelled the six working orders
    and placed six new ones (the position unprotected in between on a live venue)."""
    seq = iter(range(1, 100))
    protector = Protector("main", Book(12_000.59), {"ETH-PERP": ETH}, lambda: f"pb{next(seq)}")
    assert protector.relevel("ETH-PERP", 12_000.59, 2_500.0, 3_500.0)
    assert protector.sync("ETH-PERP", 1)
    placed, protector.to_place = protector.to_place, []
    for order in placed:
        protector.placed(order)
    stops = [o.size for o in placed if o.order_type is OrderType.STOP_MARKET]
    assert len(stops) == 7 and max(stops) <= 2_000.0
    assert sum(stops) < 12_000.59  # the float sum of the pieces, a hair short
    assert not protector.sync("ETH-PERP", 2), (protector.to_place, protector.to_cancel)
    assert protector.to_cancel == [] and protector.to_place == []


def test_an_entry_whose_protection_needs_more_than_the_exchange_keeps_is_refused(
    tmp_path: Path,
) -> None:
    """Binance keeps at most 10 open stop / take-profit orders per symbol
    (MAX_NUM_ALGO_ORDERS). Seven entries of 100 BTC with a stop and a take-profit: at
    700 BTC the protection is 6 stops + 6 take-profits (120 BTC at most each), which
    the exchange refuses from the eleventh on, leaving the position part unprotected.
    The seventh entry is refused before it exists now, saying why; the first six (600
    BTC: 5 + 5 orders) are protected in full."""
    plan = write_plan(tmp_path / "plan.csv", [
        {"id": f"r{n}", "side": "long", "size": 100, "entry": "market", "stop": 59_000,
         "take_profit": 62_000} for n in range(1, 8)])  # fmt: skip
    settings = big_account(tmp_path, "")
    strategy = {"name": "plan", "params": {"file": str(plan), "reload_interval": 0}}
    settings = settings.model_copy(update={"strategy": settings.strategy.model_copy(
        update=strategy)})  # fmt: skip
    feed = ScriptedFeed(quotes(BTC, [60_000.0] * 10, start_ms=START_MS))
    result = run_bot_sync(settings, feed=feed, progress=False)
    assert result.status == "completed"
    with sqlite3.connect(result.db_path) as conn:
        rows = conn.execute("SELECT order_type, size, status FROM orders WHERE run_id=?",
                            (result.run_id,)).fetchall()  # fmt: skip
        denied = conn.execute("SELECT reason_code, detail FROM denials WHERE run_id=?",
                              (result.run_id,)).fetchall()  # fmt: skip
    entries = [r for r in rows if r[0] == "market"]
    last = [r[:2] for r in rows if r[0] != "market"][-10:]  # placed after the 6th fill
    assert [r[1] for r in entries] == [100.0] * 6, rows
    assert sorted(last) == [("stop_market", 120.0)] * 5 + [("take_profit_market", 120.0)] * 5
    assert [code for code, _ in denied] == ["ABOVE_MAX_QUANTITY"], denied
    assert "10 open stop and take-profit orders" in denied[0][1], denied


def test_an_entry_without_levels_that_grows_a_protected_position_past_the_limit_is_refused(
    tmp_path: Path,
) -> None:
    """The first entry of 100 BTC asks for a stop and a take-profit; six more without
    levels grow the position, and its protection grows with it (the levels protect the
    whole position). At 700 BTC that is 6 + 6 orders, beyond the 10 the exchange keeps:
    the seventh entry is refused as one asking for the levels itself is."""
    rows: list[dict[str, object]] = [
        {"id": "r1", "side": "long", "size": 100, "entry": "market", "stop": 59_000,
         "take_profit": 62_000}]  # fmt: skip
    rows += [{"id": f"r{n}", "side": "long", "size": 100, "entry": "market"}
             for n in range(2, 8)]  # fmt: skip
    plan = write_plan(tmp_path / "plan.csv", rows)
    settings = big_account(tmp_path, "")
    strategy = {"name": "plan", "params": {"file": str(plan), "reload_interval": 0}}
    settings = settings.model_copy(update={"strategy": settings.strategy.model_copy(
        update=strategy)})  # fmt: skip
    feed = ScriptedFeed(quotes(BTC, [60_000.0] * 20, start_ms=START_MS))
    result = run_bot_sync(settings, feed=feed, progress=False)
    assert result.status == "completed"
    with sqlite3.connect(result.db_path) as conn:
        rows_ = conn.execute("SELECT order_type, size FROM orders WHERE run_id=?",
                             (result.run_id,)).fetchall()  # fmt: skip
        denied = conn.execute("SELECT reason_code FROM denials WHERE run_id=?",
                              (result.run_id,)).fetchall()  # fmt: skip
    assert sum(size for kind, size in rows_ if kind == "market") == 600.0, rows_
    assert max(size for kind, size in rows_ if kind != "market") == 120.0, rows_
    assert denied == [("ABOVE_MAX_QUANTITY",)]


def test_a_plain_stop_larger_than_the_position_is_replaced() -> None:
    """On an account the portfolios share (Protector.plain) the stop goes out plain, so
    a stop of the 2 once held, left working after a close to 1, would sell 2 and open a
    short when it triggered; it is replaced by one of the size held. Reduce-only, the
    larger stop still covers (the exchange cuts it to the position)."""
    for plain, replaced in ((frozenset({"ETH-PERP"}), True), (frozenset[str](), False)):
        ids = (f"pb{n}" for n in range(1, 100))
        book = Book(2.0)
        protector = Protector("one", book, {"ETH-PERP": ETH}, ids.__next__)
        protector.plain = plain
        assert protector.relevel("ETH-PERP", 2.0, 2_500.0, None)
        assert protector.sync("ETH-PERP", 1)
        placed, protector.to_place = protector.to_place, []
        assert [(o.size, o.reduce_only) for o in placed] == [(2.0, not plain)]
        protector.placed(placed[0])
        book.held = 1.0
        assert protector.sync("ETH-PERP", 2) is replaced
        if replaced:
            assert protector.to_cancel == [placed[0].client_id]
            assert [(o.size, o.reduce_only) for o in protector.to_place] == [(1.0, False)]
