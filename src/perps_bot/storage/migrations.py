"""Bringing a database written by an older perps-bot to the current schema, step by step.
Each step runs once, in a transaction, when the file is opened; a file from a newer
version is refused in one line (its tables may mean something this version misreads)."""

import sqlite3

from perps_bot.storage import equity_blocks
from perps_bot.storage.durable import TRADING_STATE_SQL
from perps_bot.storage.equity_blocks import TABLE_SQL as EQUITY_BLOCKS_SQL

SCHEMA_VERSION = 9


def _to_2(db: sqlite3.Connection, tables: set[str]) -> None:
    """2: the equity curve moved from one row per snapshot to columnar blocks."""
    if "equity" in tables:
        db.execute(EQUITY_BLOCKS_SQL)
        equity_blocks.migrate_rows(db)


def _to_3(db: sqlite3.Connection, tables: set[str]) -> None:
    """3: orders keep their lifecycle: the reason of their status, when it last changed,
    and the portfolio they belong to."""
    _add_columns(db, "orders", tables, ("status_reason TEXT NOT NULL DEFAULT ''",
                 "updated_ts INTEGER", "portfolio TEXT NOT NULL DEFAULT 'main'"))  # fmt: skip


def _to_4(db: sqlite3.Connection, tables: set[str]) -> None:
    """4: runs know the process that wrote them (pid, host), so a run left `running` by a
    process that is gone can be told from one still going, and marked `crashed`. The
    tables of the trading state and of checkpoints are created by the schema itself."""
    _add_columns(db, "runs", tables, ("pid INTEGER", "host TEXT"))


def _to_5(db: sqlite3.Connection, tables: set[str]) -> None:
    """5: a run with several portfolios (SPEC 10) is a parent run (the account) with one
    child run per portfolio: its portfolio id and its parent's run id; the trading state
    is kept per portfolio (the one row of before is portfolio `main`)."""
    _add_columns(
        db, "runs", tables, ("parent_run_id TEXT", "portfolio TEXT NOT NULL DEFAULT 'main'")
    )
    _add_columns(db, "trading_state_log", tables, ("portfolio TEXT NOT NULL DEFAULT 'main'",))
    if "trading_state" in tables and "portfolio" not in _columns(db, "trading_state"):
        db.execute("ALTER TABLE trading_state RENAME TO trading_state_4")
        db.execute(TRADING_STATE_SQL)
        db.execute(
            "INSERT INTO trading_state (portfolio, profile, state, detail, risk, run_id,"
            " updated_at) SELECT 'main', profile, state, detail, risk, run_id, updated_at"
            " FROM trading_state_4"
        )
        db.execute("DROP TABLE trading_state_4")


def _to_6(db: sqlite3.Connection, tables: set[str]) -> None:
    """6: a session keeps the portfolios the API paused, for a restart that goes on with
    it as a new run (a live session: no checkpoint holds them)."""
    _add_columns(db, "sessions", tables, ("paused TEXT NOT NULL DEFAULT '[]'",))


def _to_7(db: sqlite3.Connection, tables: set[str]) -> None:
    """7: a session keeps how many flattens the API took of each portfolio and the prompts
    it gave their planners, for a restart that goes on from a checkpoint taken before
    them (or as a new run: a live session)."""
    _add_columns(db, "sessions", tables, ("flattens TEXT NOT NULL DEFAULT '{}'",
                                          "prompts TEXT NOT NULL DEFAULT '{}'"))  # fmt: skip


def _to_8(db: sqlite3.Connection, tables: set[str]) -> None:
    """8: a session keeps how many of the flattens the API took made their closes: a live
    session's server killed between the two carries the rest out after its restart."""
    _add_columns(db, "sessions", tables, ("flattened TEXT NOT NULL DEFAULT '{}'",))


def _to_9(db: sqlite3.Connection, tables: set[str]) -> None:
    """9: runs keep their strategy fingerprint without a plan file's content, which
    --resume compares (a plan edited while its run is stopped is no other code)."""
    _add_columns(db, "runs", tables, ("strategy_code_fingerprint TEXT",))


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _add_columns(
    db: sqlite3.Connection, table: str, tables: set[str], ddls: tuple[str, ...]
) -> None:
    if table not in tables:
        return
    have = _columns(db, table)
    for ddl in ddls:
        if ddl.split()[0] not in have:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {ddl}")


STEPS = {2: _to_2, 3: _to_3, 4: _to_4, 5: _to_5, 6: _to_6, 7: _to_7, 8: _to_8, 9: _to_9}


def upgrade(db: sqlite3.Connection, version: int, tables: set[str]) -> None:
    """Run every step after `version` (the caller holds a transaction)."""
    for target in sorted(STEPS):
        if target > version:
            STEPS[target](db, tables)
