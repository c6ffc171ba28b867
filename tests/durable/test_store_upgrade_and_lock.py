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


V4_TRADING_STATE = """
CREATE TABLE trading_state (id INTEGER PRIMARY KEY CHECK (id = 1), profile TEXT NOT NULL,
    state TEXT NOT NULL, detail TEXT NOT NULL, risk TEXT NOT NULL, run_id TEXT,
    updated_at INTEGER NOT NULL);
CREATE TABLE trading_state_log (profile TEXT NOT NULL, state TEXT NOT NULL,
    detail TEXT NOT NULL, source TEXT NOT NULL, run_id TEXT, created_at INTEGER NOT NULL);
INSERT INTO trading_state VALUES (1, 'canary', 'HALTED', 'drawdown', '{"state": "HALTED"}',
    'old', 5);
INSERT INTO trading_state_log VALUES ('canary', 'HALTED', 'drawdown', 'run', 'old', 5);
"""


def test_a_schema_4_halt_becomes_the_halt_of_portfolio_main(tmp_path: Path) -> None:
    """Schema 5 keeps a trading state per portfolio: the one halt of a schema 4 file is
    kept, as portfolio `main`'s (a one-strategy bot reads it as before); runs gain their
    parent and portfolio."""
    path = tmp_path / "v4.sqlite"
    v4 = V2_ORDERS.replace("'2'", "'4'") + V3_RUNS + V4_TRADING_STATE
    with sqlite3.connect(path) as db:
        db.executescript(v4)
        db.execute("ALTER TABLE runs ADD COLUMN pid INTEGER")
        db.execute("ALTER TABLE runs ADD COLUMN host TEXT")
    with RunStore(path) as store:
        saved = stored.load_trading_state(store.connection)
        assert saved is not None and (saved.portfolio, saved.state) == ("main", "HALTED")
        assert stored.load_trading_state(store.connection, "other") is None
        run = store.run("old")
        assert (run.parent_run_id, run.portfolio) == (None, "main")
        with store.transaction():
            stored.save_trading_state(store.connection, profile="canary", state="ACTIVE",
                                      detail="", risk={}, run_id="new", source="run",
                                      portfolio="b")  # fmt: skip
        states = {s.portfolio: s.state for s in stored.load_trading_states(store.connection)}
        assert states == {"main": "HALTED", "b": "ACTIVE"}
        log = store.connection.execute("SELECT portfolio, state FROM trading_state_log")
        assert log.fetchall() == [("main", "HALTED"), ("b", "ACTIVE")]


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
