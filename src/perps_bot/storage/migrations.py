"""Bringing a database written by an older perps-bot to the current schema, step by step.
Each step runs once, in a transaction, when the file is opened; a file from a newer
version is refused in one line (its tables may mean something this version misreads)."""

import sqlite3

from perps_bot.storage import equity_blocks
from perps_bot.storage.equity_blocks import TABLE_SQL as EQUITY_BLOCKS_SQL

SCHEMA_VERSION = 4


def _to_2(db: sqlite3.Connection, tables: set[str]) -> None:
    """2: the equity curve moved from one row per snapshot to columnar blocks."""
    if "equity" in tables:
        db.execute(EQUITY_BLOCKS_SQL)
        equity_blocks.migrate_rows(db)


def _to_3(db: sqlite3.Connection, tables: set[str]) -> None:
    """3: orders keep their lifecycle: the reason of their status, when it last changed,
    and the portfolio they belong to."""
    if "orders" not in tables:
        return
    columns = {row[1] for row in db.execute("PRAGMA table_info(orders)")}
    for name, ddl in (
        ("status_reason", "status_reason TEXT NOT NULL DEFAULT ''"),
        ("updated_ts", "updated_ts INTEGER"),
        ("portfolio", "portfolio TEXT NOT NULL DEFAULT 'main'"),
    ):
        if name not in columns:
            db.execute(f"ALTER TABLE orders ADD COLUMN {ddl}")


def _to_4(db: sqlite3.Connection, tables: set[str]) -> None:
    """4: runs know the process that wrote them (pid, host), so a run left `running` by a
    process that is gone can be told from one still going, and marked `crashed`. The
    tables of the trading state and of checkpoints are created by the schema itself."""
    if "runs" not in tables:
        return
    columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    for name, ddl in (("pid", "pid INTEGER"), ("host", "host TEXT")):
        if name not in columns:
            db.execute(f"ALTER TABLE runs ADD COLUMN {ddl}")


STEPS = {2: _to_2, 3: _to_3, 4: _to_4}


def upgrade(db: sqlite3.Connection, version: int, tables: set[str]) -> None:
    """Run every step after `version` (the caller holds a transaction)."""
    for target in sorted(STEPS):
        if target > version:
            STEPS[target](db, tables)
