"""Stored protective levels (SPEC 9, 16): committed before the entry is sent, in force
once it filled (also when only the crash recovery stored that fill), gone when the
entry ends unfilled; and at a reconciliation a restarted bot compares them with the
position the exchange holds: protects it, warns once about a changed size, halts on
a flipped side."""

import logging
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from perps_bot.domain import (
    Fill,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Side,
    record_fill,
    transition,
)
from perps_bot.orchestrator.protection import Protector
from perps_bot.orchestrator.protective_levels import StoredLevelsKeeper
from perps_bot.storage import RunStore

SCOPE = "canary/main"


class Book:
    """The one position book, as the protector reads it."""

    def __init__(self) -> None:
        self.held: dict[str, float] = {}

    def position_size(self, symbol: str) -> float:
        return self.held.get(symbol, 0.0)

    def entry_price(self, symbol: str) -> float:
        return 0.0

    def symbols(self) -> list[str]:
        return sorted(self.held)


class Bot:
    """One run's protector with its keeper over the database at `path`."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.store = RunStore(path)
        self.book = Book()
        self.halts: list[str] = []
        seq = iter(range(1, 1000))
        self.protector = Protector("main", self.book, {}, lambda: f"pb{run_id}x{next(seq)}")
        self.protector.keeper = StoredLevelsKeeper(self.store, SCOPE, run_id, self.halts.append)

    def placed(self, ts: int = 2) -> "Placed":
        """Reconcile (adopt the venue's open orders: none), then what sync places."""
        self.protector.adopt([])
        self.protector.sync("ETH-PERP", ts)
        orders, self.protector.to_place = self.protector.to_place, []
        for order in orders:
            self.protector.placed(order)
        return [(o.client_id, o.order_type, o.trigger_price, o.size) for o in orders]


Placed = list[tuple[str, OrderType, float | None, float]]
Levels = list[tuple[OrderType, float | None, float]]


def levels(placed: Placed) -> Levels:
    """(kind, trigger, size) of the protective orders placed."""
    return [(kind, trigger, size) for _, kind, trigger, size in placed]


def stop_and_take(stop: float, take: float, size: float) -> Levels:
    return [(OrderType.STOP_MARKET, stop, size), (OrderType.TAKE_PROFIT_MARKET, take, size)]


def entry(cid: str = "pbaaaaaax1") -> Order:
    return Order(client_id=cid, symbol="ETH-PERP", side=Side.BUY, size=0.01,
                 order_type=OrderType.MARKET, price=None, reduce_only=False, created_ts=1,
                 correlation_id=cid, stop_loss=2_950.0, take_profit=3_050.0)  # fmt: skip


def rows(path: Path) -> list[tuple[str, int, float | None]]:
    """(entry client id, active, size) of every stored row, read by another connection."""
    with sqlite3.connect(path) as conn:
        found = conn.execute(
            "SELECT entry_client_id, active, size FROM protective_levels ORDER BY id"
        ).fetchall()
    return [(str(c), int(a), s) for c, a, s in found]


def test_levels_are_committed_before_the_entry_is_sent(tmp_path: Path) -> None:
    bot = Bot(tmp_path / "db.sqlite", "aaaaaa")
    bot.protector.watch(entry())  # the orchestrator sends the order after this
    assert rows(tmp_path / "db.sqlite") == [("pbaaaaaax1", 0, None)]


def test_an_entry_that_ends_unfilled_leaves_no_levels(tmp_path: Path) -> None:
    bot = Bot(tmp_path / "db.sqlite", "aaaaaa")
    order = entry()
    bot.protector.watch(order)
    transition(order, OrderStatus.ACCEPTED, 2, "resting")
    bot.protector.on_update(transition(order, OrderStatus.EXPIRED, 3, "expired"))
    assert rows(tmp_path / "db.sqlite") == []


def test_a_fill_only_the_crash_recovery_stored_still_protects_after_a_restart(
    tmp_path: Path,
) -> None:
    db = tmp_path / "db.sqlite"
    first = Bot(db, "aaaaaa")
    first.protector.watch(entry())  # killed before the fill reached the protector
    fill = Fill(5, "ETH-PERP", Side.BUY, 0.01, 3_000.0, 0.01, Liquidity.TAKER, "pbaaaaaax1",
                "pbaaaaaax1")  # fmt: skip
    first.store.add_fill("run-a", fill, realized_pnl=0.0, position_after=0.01, entry_after=3e3)
    first.store.close()
    again = Bot(db, "bbbbbb")
    again.book.held["ETH-PERP"] = 0.01  # adopted from the exchange
    placed = again.placed()
    assert levels(placed) == stop_and_take(2_950.0, 3_050.0, 0.01)
    assert [cid[:3] for cid, *_ in placed] == ["pbp", "pbp"]
    assert [cid[-2:] for cid, *_ in placed] == ["s1", "t1"]  # the first of each
    assert rows(db) == [("pbaaaaaax1", 1, 0.01)]
    third = Bot(db, "cccccc")  # one more restart: the next placement has a new id
    third.book.held["ETH-PERP"] = 0.01
    assert [cid[-2:] for cid, *_ in third.placed()] == ["s2", "t2"]


def protected(db: Path) -> None:
    """A first run whose entry filled and whose protection covers 0.01."""
    first = Bot(db, "aaaaaa")
    first.protector.watch(entry())
    first.book.held["ETH-PERP"] = 0.01
    first.protector.on_fill("pbaaaaaax1", "ETH-PERP", 0.01)
    first.protector.sync("ETH-PERP", 1)
    first.store.close()
    assert rows(db) == [("pbaaaaaax1", 1, 0.01)]


def test_a_position_that_grew_while_down_is_protected_whole_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "db.sqlite"
    protected(db)
    again = Bot(db, "bbbbbb")
    again.book.held["ETH-PERP"] = 0.02
    with caplog.at_level(logging.WARNING, logger="perps_bot.orchestrator"):
        assert [size for *_, size in again.placed()] == [0.02, 0.02]
        again.placed()  # the next reconciliation: nothing new to say
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "protective orders of ETH-PERP covered 0.01, the exchange holds +0.02: they now"
        " cover the position held (reduce-only)"
    ]
    assert again.halts == []


def test_a_position_that_flipped_while_down_halts_and_places_nothing(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    protected(db)
    again = Bot(db, "bbbbbb")
    again.book.held["ETH-PERP"] = -0.01
    assert again.placed() == []
    assert again.halts == [
        "the protective levels of ETH-PERP are for a long position, the exchange holds"
        " -0.01: no stop is known for it"
    ]
    assert rows(db) == []  # they were for a position that is gone


def test_a_refused_stop_halts_once_and_is_tried_again_at_the_next_reconciliation(
    tmp_path: Path,
) -> None:
    db = tmp_path / "db.sqlite"
    protected(db)
    again = Bot(db, "bbbbbb")
    again.book.held["ETH-PERP"] = 0.01
    for attempt in (1, 2):
        placed = again.placed()
        assert [cid[-2:] for cid, *_ in placed] == [f"s{attempt + 1}", f"t{attempt + 1}"]
        stop = again.protector.working[placed[0][0]]
        update = transition(stop, OrderStatus.REJECTED, 3, "-2021 Order would immediately trigger.")
        again.protector.on_update(update)  # the next reconciliation: nothing on the exchange
    assert again.halts == [
        "the stop of ETH-PERP at 2950.0 was not placed (-2021 Order would immediately"
        " trigger.): the position is not protected by it; the next reconciliation tries again"
    ]


def test_a_stop_placed_by_hand_is_left_alone_and_an_earlier_runs_is_kept(tmp_path: Path) -> None:
    """The exchange also holds a stop the trader placed by hand (an extra one, at 2,900):
    reconciliation keeps the bot's own stop and take-profit of the earlier run and places
    nothing; the hand-placed stop is neither taken for the bot's nor cancelled. Before,
    every open reduce-only trigger order was taken for the bot's and cancelled."""
    db = tmp_path / "db.sqlite"
    protected(db)
    again = Bot(db, "bbbbbb")
    again.book.held["ETH-PERP"] = 0.01
    prefix = again.protector.keeper.prefix  # type: ignore[union-attr]
    on_exchange = [
        _resting(f"{prefix}1s1", OrderType.STOP_MARKET, 2_950.0),
        _resting(f"{prefix}1t1", OrderType.TAKE_PROFIT_MARKET, 3_050.0),
        _resting("web_8f3a2c", OrderType.STOP_MARKET, 2_900.0),
    ]
    again.protector.adopt(on_exchange)
    assert again.protector.sync("ETH-PERP", 2) is False  # nothing to place or cancel
    assert sorted(again.protector.working) == [f"{prefix}1s1", f"{prefix}1t1"]


def _resting(cid: str, kind: OrderType, trigger: float) -> Order:
    """A reduce-only sell trigger order of 0.01 ETH open on the exchange."""
    return Order(client_id=cid, symbol="ETH-PERP", side=Side.SELL, size=0.01, order_type=kind,
                 price=None, reduce_only=True, created_ts=1, correlation_id=cid,
                 status=OrderStatus.ACCEPTED, trigger_price=trigger)  # fmt: skip


def test_a_short_entry_while_long_leaves_the_long_protected_across_a_restart(
    tmp_path: Path,
) -> None:
    """Long 0.02 (stop 2,950, take-profit 3,050), then a short entry of 0.01 with its own
    levels: the long 0.01 left keeps its levels, stored, and a restart protects it with
    them and does not halt. The short's levels never came into force and are not kept."""
    db = tmp_path / "db.sqlite"
    bot = Bot(db, "aaaaaa")
    long_entry = replace(entry(), size=0.02)
    bot.protector.watch(long_entry)
    bot.book.held["ETH-PERP"] = 0.02
    bot.protector.on_fill(long_entry.client_id, "ETH-PERP", 0.02)
    bot.protector.sync("ETH-PERP", 1)
    short = replace(entry("pbaaaaaax2"), side=Side.SELL, size=0.01, stop_loss=3_100.0,
                    take_profit=2_900.0)  # fmt: skip
    bot.protector.watch(short)
    fill = Fill(5, "ETH-PERP", Side.SELL, 0.01, 3_000.0, 0.01, Liquidity.TAKER, "pbaaaaaax2",
                "pbaaaaaax2")  # fmt: skip
    bot.store.add_fill("run-a", fill, realized_pnl=0.0, position_after=0.01, entry_after=3e3)
    bot.book.held["ETH-PERP"] = 0.01
    bot.protector.on_fill("pbaaaaaax2", "ETH-PERP", 0.01)
    bot.protector.sync("ETH-PERP", 6)
    assert rows(db) == [("pbaaaaaax1", 1, 0.01)]
    bot.store.close()
    again = Bot(db, "bbbbbb")
    again.book.held["ETH-PERP"] = 0.01
    placed = again.placed()
    assert levels(placed) == stop_and_take(2_950.0, 3_050.0, 0.01)
    assert again.halts == []


def test_without_stored_levels_only_the_bots_own_orphans_are_cancelled() -> None:
    """A run that keeps no levels (a server's live session) finds an earlier session's
    stop (a `pb...` id) and one placed by hand with no position to protect: it cancels
    its own orphan and leaves the hand-placed one alone."""
    protector = Protector("main", Book(), {}, lambda: "pbcccccx1")
    protector.adopt([_resting("pbaaaaaax7", OrderType.STOP_MARKET, 2_950.0),
                     _resting("web_8f3a2c", OrderType.STOP_MARKET, 2_900.0)])  # fmt: skip
    assert protector.sync("ETH-PERP", 2) is True
    assert protector.to_cancel == ["pbaaaaaax7"]


def test_a_moved_stop_is_the_one_a_restart_places(tmp_path: Path) -> None:
    """A target already held that moves its stop (Protector.relevel): the stored row
    holds the new levels, so the next run protects the position at them."""
    db = tmp_path / "db.sqlite"
    protected(db)
    moved = Bot(db, "bbbbbb")
    moved.book.held["ETH-PERP"] = 0.01
    moved.placed()  # the levels stored by the first run are restored
    assert moved.protector.relevel("ETH-PERP", 0.01, 2_980.0, None)
    assert not moved.protector.relevel("ETH-PERP", 0.01, 2_980.0, None)  # no change
    moved.store.close()
    again = Bot(db, "cccccc")
    again.book.held["ETH-PERP"] = 0.01
    placed = again.placed()
    assert [(kind, trigger) for _, kind, trigger, _ in placed] == [(OrderType.STOP_MARKET, 2_980.0)]
    assert rows(db) == [("pbaaaaaax1", 1, 0.01)]


def test_levels_for_a_position_held_without_any_are_kept(tmp_path: Path) -> None:
    """A position that no entry protected (adopted, or entered without levels) gets the
    levels of a target that asks for them, stored as a row of their own; a target of
    the other side or flat does not (its entry's fill sets the levels)."""
    db = tmp_path / "db.sqlite"
    bot = Bot(db, "aaaaaa")
    bot.book.held["ETH-PERP"] = -0.02
    assert not bot.protector.relevel("ETH-PERP", 0.01, 2_950.0, 3_050.0)  # a flip's
    assert not bot.protector.relevel("ETH-PERP", 0.0, 2_950.0, 3_050.0)
    assert bot.protector.relevel("ETH-PERP", -0.02, 3_050.0, 2_950.0)
    bot.store.close()
    again = Bot(db, "bbbbbb")
    again.book.held["ETH-PERP"] = -0.02
    placed = again.placed()
    assert levels(placed) == stop_and_take(3_050.0, 2_950.0, 0.02)
    assert [(cid, active) for cid, active, _ in rows(db)] == [("levels-aaaaaa-ETH-PERP", 1)]


def _short_protected(bot: "Bot") -> None:
    """Short 0.02 with its stop at 3,100 and take-profit at 2,900, in force."""
    short = replace(entry("pbaaaaaax1"), side=Side.SELL, size=0.02, stop_loss=3_100.0,
                    take_profit=2_900.0)  # fmt: skip
    bot.protector.watch(short)
    bot.book.held["ETH-PERP"] = -0.02
    bot.protector.on_fill(short.client_id, "ETH-PERP", 0.02)
    bot.protector.sync("ETH-PERP", 1)


def _restarted_short_keeps_its_levels(db: Path) -> "Bot":
    """The next start with short 0.01 held: it places the short's stop and take-profit
    and does not halt."""
    again = Bot(db, "bbbbbb")
    again.book.held["ETH-PERP"] = -0.01
    assert levels(again.placed()) == stop_and_take(3_100.0, 2_900.0, 0.01)
    assert again.halts == []
    return again


def _short_with_a_long_entry_resting(db: Path) -> tuple["Bot", Order]:
    """Short 0.02 protected, and a long limit entry of 0.04 resting (stop 2,950)."""
    bot = Bot(db, "aaaaaa")
    _short_protected(bot)
    buy = replace(entry("pbaaaaaax2"), size=0.04, order_type=OrderType.LIMIT, price=3_000.0)
    bot.protector.watch(buy)
    transition(buy, OrderStatus.ACCEPTED, 2, "resting")
    return bot, buy


def test_an_entry_cancelled_part_filled_short_of_its_side_leaves_no_levels(
    tmp_path: Path,
) -> None:
    """Short 0.02 protected; a long limit entry of 0.04 (stop 2,950) fills 0.01 and is
    cancelled: the position never got long, the short 0.01 left keeps its levels, and
    a restart protects it with them. Before, the long entry's row stayed stored as
    pending: the restart took it for the levels in force (deleting the short's row),
    found them on the wrong side and halted, cancelling the short's protection."""
    db = tmp_path / "db.sqlite"
    bot, buy = _short_with_a_long_entry_resting(db)
    fill = Fill(3, "ETH-PERP", Side.BUY, 0.01, 3_000.0, 0.01, Liquidity.MAKER, "pbaaaaaax2",
                "pbaaaaaax2")  # fmt: skip
    bot.store.add_fill("run-a", fill, realized_pnl=0.0, position_after=-0.01, entry_after=3e3)
    bot.book.held["ETH-PERP"] = -0.01
    bot.protector.on_update(record_fill(buy, 0.01, 3_000.0, 3))
    bot.protector.on_fill("pbaaaaaax2", "ETH-PERP", 0.01)
    bot.protector.sync("ETH-PERP", 3)
    bot.protector.on_update(transition(buy, OrderStatus.CANCELED, 4, "canceled"))
    assert rows(db) == [("pbaaaaaax1", 1, 0.01)]
    bot.store.close()
    _restarted_short_keeps_its_levels(db)
    assert rows(db) == [("pbaaaaaax1", 1, 0.01)]


def test_an_entry_whose_end_is_reported_before_its_fill_still_protects(tmp_path: Path) -> None:
    """A live venue may report a part-filled entry cancelled before its fill is booked:
    the fill, booked after, still puts its levels in force (stored, placed)."""
    db = tmp_path / "db.sqlite"
    bot = Bot(db, "aaaaaa")
    assert bot.placed(1) == []  # the reconciliation at start
    buy = replace(entry(), size=0.04, order_type=OrderType.LIMIT, price=3_000.0)
    bot.protector.watch(buy)
    transition(buy, OrderStatus.ACCEPTED, 2, "resting")
    bot.protector.on_update(record_fill(buy, 0.01, 3_000.0, 3))
    bot.protector.on_update(transition(buy, OrderStatus.CANCELED, 4, "canceled"))
    bot.book.held["ETH-PERP"] = 0.01
    bot.protector.on_fill("pbaaaaaax1", "ETH-PERP", 0.01)
    assert [(kind, trigger, size) for _, kind, trigger, size in bot.placed(5)] == [
        (OrderType.STOP_MARKET, 2_950.0, 0.01),
        (OrderType.TAKE_PROFIT_MARKET, 3_050.0, 0.01),
    ]
    assert rows(db) == [("pbaaaaaax1", 1, 0.01)]


def test_an_entry_filled_while_down_after_a_later_entry_keeps_its_levels_stored(
    tmp_path: Path,
) -> None:
    """A long limit entry (stop 2,900) rests; a later market entry (stop 2,950) fills and
    its levels are in force; the bot goes down and the limit fills. The restart puts the
    limit's levels in force (its fill came last, as when the bot sees the fills in that
    order) and keeps them stored, so the next start still has them. Before, loading the
    older row deleted the newer one from the store and then the older one as stale:
    nothing was left stored, and the start after cancelled the position's protective
    orders as orphans."""
    db = tmp_path / "db.sqlite"
    first = Bot(db, "aaaaaa")
    assert first.placed(1) == []  # the reconciliation at start
    limit = replace(entry("pbaaaaaax1"), order_type=OrderType.LIMIT, price=2_990.0,
                    stop_loss=2_900.0, take_profit=3_100.0)  # fmt: skip
    first.protector.watch(limit)
    first.protector.on_update(transition(limit, OrderStatus.ACCEPTED, 2, "resting"))
    first.protector.watch(entry("pbaaaaaax2"))
    first.book.held["ETH-PERP"] = 0.01
    first.protector.on_fill("pbaaaaaax2", "ETH-PERP", 0.01)
    first.placed(3)
    # the limit's fill, booked by the crash recovery of the next start
    fill = Fill(5, "ETH-PERP", Side.BUY, 0.01, 2_990.0, 0.01, Liquidity.MAKER, "pbaaaaaax1",
                "pbaaaaaax1")  # fmt: skip
    first.store.add_fill("run-a", fill, realized_pnl=0.0, position_after=0.02, entry_after=3e3)
    first.store.close()
    for run in ("bbbbbb", "cccccc"):
        again = Bot(db, run)
        again.book.held["ETH-PERP"] = 0.02
        placed = again.placed()
        assert levels(placed) == stop_and_take(2_900.0, 3_100.0, 0.02)
        assert rows(db) == [("pbaaaaaax1", 1, 0.02)]
        assert again.halts == []
        again.store.close()


def test_a_part_filled_entry_still_open_at_a_restart_short_of_its_side_waits(
    tmp_path: Path,
) -> None:
    """Short 0.02 protected; a long limit entry of 0.04 (stop 2,950) has filled 0.01 and
    still rests when the bot restarts: the short 0.01 left keeps its levels (no halt),
    and the entry's levels come into force once its fills make the position long.
    Before, the restart took the entry's levels for those in force because it had a
    fill: it deleted the short's row, halted on the wrong side and protected nothing."""
    db = tmp_path / "db.sqlite"
    bot, buy = _short_with_a_long_entry_resting(db)
    update = record_fill(buy, 0.01, 3_000.0, 3)
    bot.store.add_order("run-a", buy, update)
    fill = Fill(3, "ETH-PERP", Side.BUY, 0.01, 3_000.0, 0.01, Liquidity.MAKER, "pbaaaaaax2",
                "pbaaaaaax2")  # fmt: skip
    bot.store.add_fill("run-a", fill, realized_pnl=0.0, position_after=-0.01, entry_after=3e3)
    bot.book.held["ETH-PERP"] = -0.01
    bot.protector.on_update(update)
    bot.protector.on_fill("pbaaaaaax2", "ETH-PERP", 0.01)
    bot.protector.sync("ETH-PERP", 3)
    bot.store.close()
    again = _restarted_short_keeps_its_levels(db)
    again.book.held["ETH-PERP"] = 0.02  # the rest of the entry fills: long 0.02
    again.protector.on_update(record_fill(buy, 0.03, 3_000.0, 4))
    again.protector.on_fill("pbaaaaaax2", "ETH-PERP", 0.03)
    placed = again.placed(5)
    assert levels(placed) == stop_and_take(2_950.0, 3_050.0, 0.02)
    assert rows(db) == [("pbaaaaaax2", 1, 0.02)]
