"""SQLite schema. Timestamps are simulated (event) milliseconds so that two runs with
the same profile, seed and data store identical rows; only `runs.created_at` is wall time."""

from perps_bot.storage.durable import TABLE_SQL as DURABLE_SQL
from perps_bot.storage.equity_blocks import TABLE_SQL as EQUITY_BLOCKS_SQL
from perps_bot.storage.migrations import SCHEMA_VERSION
from perps_bot.storage.orders import TABLE_SQL as ORDERS_SQL
from perps_bot.storage.plot_series import TABLE_SQL as PLOT_SERIES_SQL
from perps_bot.storage.sessions import TABLE_SQL as SESSIONS_SQL

__all__ = ["SCHEMA", "SCHEMA_VERSION"]

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    kind TEXT NOT NULL,               -- dev | backtest | dry_run | live
    seed INTEGER NOT NULL,
    config_hash TEXT NOT NULL,
    config_json TEXT NOT NULL,
    strategy TEXT NOT NULL,
    strategy_params TEXT NOT NULL,    -- JSON object, sorted keys
    strategy_fingerprint TEXT NOT NULL,
    code_version TEXT NOT NULL,
    symbols TEXT NOT NULL,            -- JSON list
    initial_balance REAL NOT NULL,
    created_at INTEGER NOT NULL,      -- wall clock ms (not part of any report)
    start_ts INTEGER,                 -- first event time
    end_ts INTEGER,                   -- last event time
    status TEXT NOT NULL,             -- running | completed | interrupted | failed | crashed
    error_lines INTEGER NOT NULL DEFAULT 0,
    warning_lines INTEGER NOT NULL DEFAULT 0,
    detail TEXT,
    pid INTEGER,                      -- the process that wrote it (schema 4)
    host TEXT,
    parent_run_id TEXT,               -- a portfolio's run: the run of its account (5)
    portfolio TEXT NOT NULL DEFAULT 'main',
    strategy_code_fingerprint TEXT    -- without a plan file's content: resume (9)
);
CREATE TABLE IF NOT EXISTS fills (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    size REAL NOT NULL,
    price REAL NOT NULL,
    fee REAL NOT NULL,
    liquidity TEXT NOT NULL,
    client_id TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    is_liquidation INTEGER NOT NULL,
    stop_price REAL,
    realized_pnl REAL NOT NULL,       -- price PnL realized by this fill (before fees)
    position_after REAL NOT NULL,     -- signed position after the fill
    entry_after REAL NOT NULL,        -- average entry price after the fill
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS funding (
    run_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    rate REAL NOT NULL,
    mark REAL NOT NULL,
    position REAL NOT NULL,
    payment REAL NOT NULL             -- signed cash flow to the account
);
CREATE TABLE IF NOT EXISTS excursions (
    run_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    open_ts INTEGER NOT NULL,         -- the fill that opened the round trip
    close_ts INTEGER NOT NULL,        -- the fill that brought it flat (or flipped it)
    mae REAL NOT NULL,                -- worst unrealized price PnL during the trade (<= 0)
    mfe REAL NOT NULL                 -- best unrealized price PnL during the trade (>= 0)
);
CREATE TABLE IF NOT EXISTS denials (
    run_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    reason_code TEXT NOT NULL,
    detail TEXT NOT NULL,
    correlation_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    run_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    size REAL NOT NULL,
    entry_price REAL NOT NULL,
    ts INTEGER NOT NULL,
    PRIMARY KEY (run_id, symbol)
);
CREATE TABLE IF NOT EXISTS promotions (
    promotion_id INTEGER PRIMARY KEY AUTOINCREMENT,
    strategy_fingerprint TEXT NOT NULL,
    strategy TEXT NOT NULL,
    stage TEXT NOT NULL,              -- canary | prod
    run_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    criteria TEXT NOT NULL            -- JSON list of {name, value, threshold, passed}
);
CREATE INDEX IF NOT EXISTS fills_run_ts ON fills (run_id, ts);
CREATE INDEX IF NOT EXISTS funding_run_ts ON funding (run_id, ts);
CREATE INDEX IF NOT EXISTS excursions_run ON excursions (run_id, symbol, close_ts);
CREATE INDEX IF NOT EXISTS promotions_fp ON promotions (strategy_fingerprint, stage);
"""
    + EQUITY_BLOCKS_SQL
    + ORDERS_SQL
    + DURABLE_SQL
    + PLOT_SERIES_SQL
    + SESSIONS_SQL
)
