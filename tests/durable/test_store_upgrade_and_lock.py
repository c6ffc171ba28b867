"""Schema 4 on files written by older versions, the database lock in one process, and
a rewind to a checkpoint deleting exactly the rows written after it."""

import sqlite3
from pathlib import Path

import pytest

from perps_bot.domain import Fill, Liquidity, Order, OrderType, Side
from perps_bot.storage import RunStore
from perps_bot.storage import durable as stored
from perps_bot.storage.lock import DatabaseBusy, DatabaseLock
from tests.storage.test_orders_table import V2_ORDERS

V3_RUNS = """
CREATE TABLE runs (run_id TEXT PRIMARY KEY, profile TEXT NOT NULL, kind TEXT NOT NULL,
    seed INTEGER NOT NULL, config_hash TEXT NOT NULL, config_json TEXT NOT NULL,
    strategy TEXT NOT NULL, strategy_params TEXT NOT NULL, strategy_fingerprint TEXT NOT NULL,
    code_version TEXT NOT NULL, symbols TEXT NOT NULL, initial_balance REAL NOT NULL,
    created_at INTEGER NOT NULL, start_ts INTEGER, end_ts INTEGER, status TEXT NOT NULL,
    error_lines INTEGER NOT NULL DEFAULT 0, warning_lines INTEGER NOT NULL DEFAULT 0, detail TEXT);
INSERT INTO runs VALUES ('old', 'dev', 'dev', 1, 'h', '{}', 'sma_cross', '{}', 'f', '0.1',
    '[]', 100.0, 1, NULL, NULL, 'running', 0, 0, NULL);
"""


def test_a_schema_3_file_gains_pid_and_host_and_its_running_run_is_crashed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v3.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(V2_ORDERS.replace("'2'", "'3'") + V3_RUNS)
    with RunStore(path, read_only=True) as store:  # a report reads it as it is
        assert (store.run("old").status, store.run("old").pid) == ("running", None)
    with RunStore(path) as store:
        with store.transaction():
            assert stored.mark_crashed(store.connection) == ["old"]
        run = store.run("old")
    assert run.status == "crashed" and run.detail is not None and "gone" in run.detail


def test_the_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    with DatabaseLock(db), pytest.raises(DatabaseBusy, match=r"pid \d+"):
        DatabaseLock(db).acquire()
    DatabaseLock(db).acquire().release()  # free again


def _fill(ts: int) -> Fill:
    return Fill(ts, "BTC-PERP", Side.BUY, 0.1, 100.0, 0.01, Liquidity.TAKER, "c", "c")


def test_rewind_deletes_what_came_after_the_checkpoint(tmp_path: Path) -> None:
    order = Order("pb-1", "BTC-PERP", Side.BUY, 1.0, OrderType.LIMIT, 99.0, False, 1, "pb-1")
    with RunStore(tmp_path / "db.sqlite") as store:
        store.add_fill("r", _fill(1), realized_pnl=0.0, position_after=0.1, entry_after=100.0)
        store.add_order("r", order)
        store.add_denial("r", 1, "BTC-PERP", "X", "d", "c")
        store.add_equity("r", 1, 1.0, 1.0, 0.0)
        marks: dict[str, int] = {}

        def write(db: sqlite3.Connection) -> None:
            marks.update(stored.table_marks(db, "r", store.next_equity_block("r")))
            stored.write_checkpoint(db, "r", ts=1, code_version="v", marks=marks, state=b"s")

        store.flush_with(write)
        order.filled, order.avg_price = 1.0, 99.0
        store.add_order("r", order)  # changed after the checkpoint
        store.add_fill("r", _fill(2), realized_pnl=0.0, position_after=0.2, entry_after=100.0)
        store.add_denial("r", 2, "BTC-PERP", "X", "d", "c")
        store.add_equity("r", 2, 2.0, 2.0, 0.0)
        store.flush()
        checkpoint = stored.read_checkpoint(store.connection, "r")
        assert checkpoint is not None and checkpoint.marks == marks
        order.filled, order.avg_price = 0.0, 0.0  # the order as the checkpoint keeps it
        with store.transaction():
            stored.rewind(store.connection, "r", checkpoint, [order])
        store.forget_cached("r")
        assert [f.ts for f in store.fills("r")] == [1]
        assert store.denial_counts("r") == {"X": 1}
        assert [o.filled for o in store.orders("r")] == [0.0]
        assert store.equity_span("r")[2] == 1
        assert store.add_fill("r", _fill(3), realized_pnl=0, position_after=0, entry_after=0) == 2
