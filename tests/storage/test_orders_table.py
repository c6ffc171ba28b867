"""The orders table keeps each order's lifecycle (schema 3), and files written with the
write-once table of schema 2 are upgraded in place, their rows kept."""

import sqlite3
from pathlib import Path

from perps_bot.domain import Order, OrderStatus, OrderType, Side, record_fill, transition
from perps_bot.storage import RunStore

V2_ORDERS = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '2');
CREATE TABLE orders (
    run_id TEXT NOT NULL, client_id TEXT NOT NULL, ts INTEGER NOT NULL, symbol TEXT NOT NULL,
    side TEXT NOT NULL, order_type TEXT NOT NULL, size REAL NOT NULL, price REAL,
    reduce_only INTEGER NOT NULL, status TEXT NOT NULL, filled REAL NOT NULL,
    avg_price REAL NOT NULL, correlation_id TEXT NOT NULL, reason TEXT NOT NULL,
    exchange_id TEXT, PRIMARY KEY (run_id, client_id));
INSERT INTO orders VALUES ('r', 'pb-1', 5, 'BTC-PERP', 'buy', 'market', 1.0, NULL, 0, 'new',
    0.0, 0.0, 'pb-1', 'entry', 'mock-1');
"""


def test_a_schema_2_file_is_upgraded_keeping_its_orders(tmp_path: Path) -> None:
    path = tmp_path / "v2.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(V2_ORDERS)
    with RunStore(path) as store:
        (old,) = store.orders("r")
    assert (old.client_id, old.status, old.portfolio, old.reason, old.updated) == (
        "pb-1", "new", "main", "", 5,
    )  # fmt: skip


def test_each_update_rewrites_the_row_and_the_latest_state_wins(tmp_path: Path) -> None:
    order = Order("pb-1", "ETH-PERP", Side.SELL, 2.0, OrderType.MARKET, None, False, 10, "pb-1")
    with RunStore(tmp_path / "db.sqlite") as store:
        store.add_order("r", order)
        store.add_order("r", order, transition(order, OrderStatus.ACCEPTED, 11, "accepted"))
        first = record_fill(order, 0.5, 3_000.0, 12)
        store.add_order("r", order, record_fill(order, 1.5, 3_004.0, 13))
        store.flush()
        store.add_order("r", order, first)  # an older snapshot written later still says so
        (row,) = store.orders("r")
    assert (row.status, row.filled, row.reason, row.updated) == (
        "partially_filled", 0.5, "partially filled", 12,
    )  # fmt: skip
