"""The orders table: one row per order, rewritten at every lifecycle change (SPEC 8),
so after a run every order shows its final status, filled quantity and average price.

Rows are queued like every other write and flushed in batches; INSERT OR REPLACE keyed
by (run_id, client_id) means only an order's latest state survives a batch, however
many updates it had."""

from typing import Any

from perps_bot.domain import Order, OrderUpdate

#: schema 3 added status_reason, updated_ts and portfolio (see storage.migrations)
TABLE_SQL = """
CREATE TABLE IF NOT EXISTS orders (
    run_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    ts INTEGER NOT NULL,              -- created (simulated or exchange time)
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    order_type TEXT NOT NULL,
    size REAL NOT NULL,
    price REAL,
    reduce_only INTEGER NOT NULL,
    status TEXT NOT NULL,             -- new | accepted | partially_filled | filled | ...
    filled REAL NOT NULL,
    avg_price REAL NOT NULL,
    correlation_id TEXT NOT NULL,
    reason TEXT NOT NULL,             -- why the strategy wanted it
    exchange_id TEXT,
    status_reason TEXT NOT NULL DEFAULT '',  -- why it is in its status
    updated_ts INTEGER,               -- time of the last status change
    portfolio TEXT NOT NULL DEFAULT 'main',
    PRIMARY KEY (run_id, client_id)
);
"""
INSERT_SQL = "INSERT OR REPLACE INTO orders VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"


def order_row(run_id: str, order: Order, update: OrderUpdate | None = None) -> tuple[Any, ...]:
    """The row of `order`; with `update`, its state as of that update. Built at every
    lifecycle step (three times for an order that fills at once), so its enums are their
    `_value_` and the flag a plain 0 or 1: the same text and number as `str()` and
    `int()`, which cost about 1,000 instructions each on Python 3.11 (domain.enums)."""
    state = update if update is not None else order
    reason = update.reason if update is not None else order.status_reason
    updated = update.ts if update is not None else order.updated_ts
    return (
        run_id,
        order.client_id,
        order.created_ts,
        order.symbol,
        order.side._value_,
        order.order_type._value_,
        order.size,
        order.price,
        1 if order.reduce_only else 0,
        state.status._value_,
        state.filled,
        state.avg_price,
        order.correlation_id,
        order.reason,
        order.exchange_id,
        reason,
        updated or order.created_ts,
        order.portfolio,
    )


SELECT_SQL = (
    "SELECT client_id, portfolio, symbol, side, order_type, size, filled, avg_price, status,"
    " status_reason, ts, COALESCE(updated_ts, ts) FROM orders WHERE run_id=?"
    " ORDER BY ts, rowid"
)
