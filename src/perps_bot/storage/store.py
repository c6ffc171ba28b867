"""The run store: one SQLite database per profile, WAL mode.

Writes are buffered and flushed in batches (one transaction per flush) because a
commit per event would dominate a backtest; fills are the exception: `flush()` is
called by the orchestrator right after every fill batch so an acknowledged fill is
never lost to a crash. Equity rows may be lost up to one flush interval on a crash,
which only thins the curve.
"""

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

from perps_bot.domain import Fill, Order, OrderUpdate, PerpsBotError
from perps_bot.storage import equity_blocks, migrations, plot_series
from perps_bot.storage.equity_blocks import EquityBuffer, EquityChunk
from perps_bot.storage.orders import INSERT_SQL as ORDERS_INSERT
from perps_bot.storage.orders import SELECT_SQL as ORDERS_SELECT
from perps_bot.storage.orders import OrderRecord, order_row
from perps_bot.storage.plot_series import SymbolSeries
from perps_bot.storage.records import (
    ExcursionRecord,
    FillRecord,
    FundingRecord,
    PromotionRecord,
    RunRecord,
)
from perps_bot.storage.schema import SCHEMA, SCHEMA_VERSION


class StoreError(PerpsBotError):
    """The database cannot be opened or read; one-line message."""


class RunStore:
    """Writes and reads runs. Not thread-safe; one per process."""

    BATCH = 50_000

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = Path(path)
        if read_only and not self.path.exists():
            raise StoreError(f"no database at {self.path}: run the bot first")
        if not read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the database's folder {self.path.parent}: {_reason(exc)}"
                ) from exc
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open database {self.path}: {_reason(exc)}") from exc
        try:
            self._require_run_store(read_only)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            if not read_only:
                self._db.executescript(SCHEMA)
            self._upgrade()
        except (sqlite3.DatabaseError, StoreError) as exc:
            self._db.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"cannot open database {self.path}: {_reason(exc)}") from exc
        self._pending: dict[str, list[tuple[Any, ...]]] = {t: [] for t in self._INSERTS}
        # an order's row is rewritten at every lifecycle step: only its latest state
        # needs writing, so pending order rows are kept by (run_id, client_id)
        self._pending_orders: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._pending_rows = 0
        self._fill_seq: dict[str, int] = {}
        #: equity snapshots waiting for the next flush, per run (a run with several
        #: portfolios writes one curve per portfolio and the account's, interleaved)
        self._equity: dict[str, EquityBuffer] = {}
        self._equity_block: dict[str, int] = {}

    def _upgrade(self) -> None:
        """Bring an older file to SCHEMA_VERSION (also when opened for reading: a
        report on a file written by an older version then works)."""
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        if "meta" not in tables:
            return  # read-only open of a file this program did not create: reads fail clearly
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is not None and row[0] == str(SCHEMA_VERSION):
            return
        if row is not None and row[0].isdigit() and int(row[0]) > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer perps-bot (schema {row[0]}, this one"
                f" reads {SCHEMA_VERSION}): upgrade perps-bot"
            )
        version = int(row[0]) if row is not None and row[0].isdigit() else 1
        with self._transaction():
            migrations.upgrade(self._db, version, tables)
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    def _require_run_store(self, read_only: bool) -> None:
        """The file is a run store (it has the `meta` table every version writes), or,
        to be written, a new or empty one. Checked before anything is written: another
        program's SQLite database is never given our tables, and a 0-byte file opened
        for reading is one line here, not 'no such table' at the first read."""
        rows = self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        tables = {row[0] for row in rows}
        if "meta" not in tables and (tables or read_only):
            raise StoreError(f"{self.path} is not a perps-bot database (no meta table)")

    # -- lifecycle -----------------------------------------------------------------
    def close(self) -> None:
        self.flush()
        self._db.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------
    _INSERTS: ClassVar[dict[str, str]] = {
        "fills": "INSERT INTO fills VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        "funding": "INSERT INTO funding VALUES (?,?,?,?,?,?,?)",
        "excursions": "INSERT INTO excursions VALUES (?,?,?,?,?,?)",
        "denials": "INSERT INTO denials VALUES (?,?,?,?,?,?)",
        "positions": "INSERT OR REPLACE INTO positions VALUES (?,?,?,?,?)",
    }

    def _queue(self, table: str, row: tuple[Any, ...]) -> None:
        self._pending[table].append(row)
        self._pending_rows += 1
        if self._pending_rows >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        """Write every buffered row in one transaction."""
        if not self._pending_rows and not any(self._equity.values()):
            return
        with self._transaction():
            self._write_pending()

    def flush_if_due(self) -> None:
        """Flush once the buffers hold a batch (equity snapshots sent to an
        `equity_sink` are not counted as they come: the caller checks between
        batches of events)."""
        if self._pending_rows + sum(map(len, self._equity.values())) >= self.BATCH:
            self.flush()

    def flush_with(self, write: Callable[[sqlite3.Connection], None]) -> None:
        """Write every buffered row and then call `write` in the same transaction, so
        what `write` stores (a checkpoint) is consistent with the rows before it."""
        with self._transaction():
            self._write_pending()
            write(self._db)

    def _write_pending(self) -> None:
        if self._pending_orders:
            self._db.executemany(ORDERS_INSERT, self._pending_orders.values())
            self._pending_orders.clear()
        for table, rows in self._pending.items():
            if rows:
                self._db.executemany(self._INSERTS[table], rows)
                rows.clear()
        self._write_equity()
        self._pending_rows = 0

    @property
    def connection(self) -> sqlite3.Connection:
        """The connection, for the storage modules that keep their own tables
        (storage.durable); they use `transaction()` for writes."""
        return self._db

    def next_equity_block(self, run_id: str) -> int:
        """The block number the run's next equity snapshots will be written to."""
        block = self._equity_block.get(run_id)
        return equity_blocks.next_block(self._db, run_id) if block is None else block

    def forget_cached(self, run_id: str) -> None:
        """Drop what is cached about `run_id`'s rows (they were rewound)."""
        self._fill_seq.pop(run_id, None)
        self._equity_block.pop(run_id, None)

    def _write_equity(self) -> None:
        for run_id, buffer in self._equity.items():
            if not len(buffer):
                continue
            block = self._equity_block.get(run_id)
            if block is None:
                block = equity_blocks.next_block(self._db, run_id)
            self._equity_block[run_id] = buffer.write(self._db, block)

    def create_run(self, run: RunRecord) -> None:
        with self._transaction():
            self._db.execute(
                "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run.run_id,
                    run.profile,
                    run.kind,
                    run.seed,
                    run.config_hash,
                    run.config_json,
                    run.strategy,
                    run.strategy_params,
                    run.strategy_fingerprint,
                    run.code_version,
                    run.symbols,
                    run.initial_balance,
                    run.created_at,
                    run.start_ts,
                    run.end_ts,
                    run.status,
                    run.error_lines,
                    run.warning_lines,
                    run.detail,
                    run.pid,
                    run.host,
                    run.parent_run_id,
                    run.portfolio,
                ),
            )

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        start_ts: int | None,
        end_ts: int | None,
        error_lines: int,
        warning_lines: int,
        detail: str | None = None,
    ) -> None:
        self.flush()
        with self._transaction():
            self._db.execute(
                "UPDATE runs SET status=?, start_ts=?, end_ts=?, error_lines=?,"
                " warning_lines=?, detail=? WHERE run_id=?",
                (status, start_ts, end_ts, error_lines, warning_lines, detail, run_id),
            )

    def add_run_detail(self, run_id: str, text: str) -> None:
        """Append to a run's detail (e.g. what a later bot recovered for it)."""
        with self._transaction():
            self._db.execute(
                "UPDATE runs SET detail = COALESCE(detail || '; ', '') || ? WHERE run_id = ?",
                (text, run_id),
            )

    def set_initial_balance(self, run_id: str, balance: float) -> None:
        """Live runs start from the balance the exchange reports, not the profile's."""
        with self._transaction():
            self._db.execute("UPDATE runs SET initial_balance=? WHERE run_id=?", (balance, run_id))

    def add_order(self, run_id: str, order: Order, update: OrderUpdate | None = None) -> None:
        """Write the order's row (its state as of `update`, when given)."""
        self._pending_orders[(run_id, order.client_id)] = order_row(run_id, order, update)
        self._pending_rows += 1
        if self._pending_rows >= self.BATCH:
            self.flush()

    def add_fill(
        self,
        run_id: str,
        fill: Fill,
        *,
        realized_pnl: float,
        position_after: float,
        entry_after: float,
    ) -> int:
        seq = self._fill_seq.get(run_id)
        if seq is None:
            row = self._db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM fills WHERE run_id=?", (run_id,)
            ).fetchone()
            seq = int(row[0])
        seq += 1
        self._fill_seq[run_id] = seq
        self._queue(
            "fills",
            (
                run_id,
                seq,
                fill.ts,
                fill.symbol,
                str(fill.side),
                fill.size,
                fill.price,
                fill.fee,
                str(fill.liquidity),
                fill.client_id,
                fill.correlation_id,
                fill.reason,
                int(fill.is_liquidation),
                fill.stop_price,
                realized_pnl,
                position_after,
                entry_after,
            ),
        )
        return seq

    def add_funding(
        self,
        run_id: str,
        ts: int,
        symbol: str,
        rate: float,
        mark: float,
        position: float,
        payment: float,
    ) -> None:
        self._queue("funding", (run_id, ts, symbol, rate, mark, position, payment))

    def add_equity(
        self, run_id: str, ts: int, equity: float, cash: float, unrealized_pnl: float
    ) -> None:
        """One equity snapshot (the orchestrator's recorders use `equity_sink`)."""
        self.equity_sink(run_id).add(ts, equity, cash, unrealized_pnl)
        self._pending_rows += 1
        if self._pending_rows >= self.BATCH:
            self.flush()

    def equity_sink(self, run_id: str) -> EquityBuffer:
        """Where `run_id`'s snapshots go: `add_ts(ts)` then `add_values((equity, cash,
        unrealized_pnl))`. The hot path of a backtest (a snapshot per candle); the caller
        calls `flush_if_due` between batches."""
        buffer = self._equity.get(run_id)
        if buffer is None:
            buffer = self._equity[run_id] = EquityBuffer()
            buffer.run_id = run_id
        return buffer

    def put_plot_series(self, run_id: str, symbol: str, ts: Any, values: dict[str, Any]) -> None:
        """Replace a symbol's sampled price and indicator series (numpy arrays)."""
        with self._transaction():
            plot_series.write(self._db, run_id, symbol, ts, values)

    def add_excursion(
        self, run_id: str, symbol: str, open_ts: int, close_ts: int, mae: float, mfe: float
    ) -> None:
        self._queue("excursions", (run_id, symbol, open_ts, close_ts, mae, mfe))

    def add_denial(
        self,
        run_id: str,
        ts: int,
        symbol: str,
        reason_code: str,
        detail: str,
        correlation_id: str,
    ) -> None:
        self._queue("denials", (run_id, ts, symbol, reason_code, detail, correlation_id))

    def set_position(
        self, run_id: str, symbol: str, size: float, entry_price: float, ts: int
    ) -> None:
        self._queue("positions", (run_id, symbol, size, entry_price, ts))

    def add_promotion(
        self, fingerprint: str, strategy: str, stage: str, run_id: str, criteria_json: str
    ) -> int:
        with self._transaction():
            cur = self._db.execute(
                "INSERT INTO promotions (strategy_fingerprint, strategy, stage, run_id,"
                " created_at, criteria) VALUES (?,?,?,?,?,?)",
                (fingerprint, strategy, stage, run_id, int(time.time() * 1000), criteria_json),
            )
            return int(cur.lastrowid or 0)

    # -- reading -------------------------------------------------------------------
    def run(self, run_id: str = "latest") -> RunRecord:
        """A run by id, or the most recently created one for 'latest'."""
        if run_id == "latest":
            row = self._db.execute(
                "SELECT * FROM runs WHERE parent_run_id IS NULL"
                " ORDER BY created_at DESC, rowid DESC LIMIT 1"
            ).fetchone()
            if row is None:
                raise StoreError(f"no runs in {self.path}: run the bot first")
        else:
            row = self._db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
            if row is None:
                raise StoreError(f"no run {run_id!r} in {self.path}")
        return RunRecord(*row)

    def runs(self) -> list[RunRecord]:
        rows = self._db.execute("SELECT * FROM runs ORDER BY created_at, rowid").fetchall()
        return [RunRecord(*r) for r in rows]

    def children(self, run_id: str) -> list[RunRecord]:
        """The run of each portfolio of a run with several (SPEC 10), in their order."""
        rows = self._db.execute(
            "SELECT * FROM runs WHERE parent_run_id=? ORDER BY rowid", (run_id,)
        ).fetchall()
        return [RunRecord(*r) for r in rows]

    def portfolio_run(self, run_id: str, portfolio: str) -> RunRecord:
        """The run of portfolio `portfolio` of run `run_id` (a one-portfolio run is its
        own portfolio `main`)."""
        run = self.run(run_id)
        children = self.children(run.run_id)
        found = [c for c in children if c.portfolio == portfolio]
        if found:
            return found[0]
        if not children and run.portfolio == portfolio:
            return run
        known = ", ".join(c.portfolio for c in children) or run.portfolio
        raise StoreError(f"run {run.run_id} has no portfolio {portfolio!r} (it has: {known})")

    def fills(self, run_id: str) -> list[FillRecord]:
        rows = self._db.execute(
            "SELECT seq, ts, symbol, side, size, price, fee, liquidity, client_id,"
            " correlation_id, reason, is_liquidation, stop_price, realized_pnl,"
            " position_after, entry_after FROM fills WHERE run_id=? ORDER BY seq",
            (run_id,),
        ).fetchall()
        return [
            FillRecord(
                seq=r[0],
                ts=r[1],
                symbol=r[2],
                side=r[3],
                size=r[4],
                price=r[5],
                fee=r[6],
                liquidity=r[7],
                client_id=r[8],
                correlation_id=r[9],
                reason=r[10],
                is_liquidation=bool(r[11]),
                stop_price=r[12],
                realized_pnl=r[13],
                position_after=r[14],
                entry_after=r[15],
            )
            for r in rows
        ]

    def orders(self, run_id: str) -> list[OrderRecord]:
        """Every order of the run in creation order, with its latest state."""
        self.flush()
        return [OrderRecord(*row) for row in self._db.execute(ORDERS_SELECT, (run_id,))]

    def funding(self, run_id: str) -> list[FundingRecord]:
        rows = self._db.execute(
            "SELECT ts, symbol, rate, mark, position, payment FROM funding"
            " WHERE run_id=? ORDER BY ts, rowid",
            (run_id,),
        ).fetchall()
        return [FundingRecord(*r) for r in rows]

    def iter_equity(self, run_id: str, chunk: int = 50_000) -> Iterator[EquityChunk]:
        """The equity curve (ts, equity, cash, unrealized_pnl arrays) in time order, in
        chunks of about `chunk` snapshots, so a report over millions of them runs in
        bounded memory. Buffered snapshots are not included: flush() first."""
        return equity_blocks.read_chunks(self._db, run_id, chunk)

    def equity_span(self, run_id: str) -> tuple[int | None, int | None, int]:
        """(first ts, last ts, number of snapshots) of the stored equity curve."""
        return equity_blocks.span(self._db, run_id)

    def plot_series(self, run_id: str) -> dict[str, SymbolSeries]:
        return plot_series.read(self._db, run_id)

    def last_equity(self, run_id: str) -> float | None:
        """The stored curve's last equity (None without rows); reads one block."""
        return equity_blocks.last_equity(self._db, run_id)

    def excursions(self, run_id: str) -> list[ExcursionRecord]:
        rows = self._db.execute(
            "SELECT symbol, open_ts, close_ts, mae, mfe FROM excursions WHERE run_id=?"
            " ORDER BY close_ts, rowid",
            (run_id,),
        ).fetchall()
        return [ExcursionRecord(*r) for r in rows]

    def denial_counts(self, run_id: str) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT reason_code, COUNT(*) FROM denials WHERE run_id=? GROUP BY reason_code"
            " ORDER BY reason_code",
            (run_id,),
        ).fetchall()
        return {str(code): int(n) for code, n in rows}

    def positions(self, run_id: str) -> dict[str, tuple[float, float]]:
        rows = self._db.execute(
            "SELECT symbol, size, entry_price FROM positions WHERE run_id=? ORDER BY symbol",
            (run_id,),
        ).fetchall()
        return {str(s): (float(q), float(p)) for s, q, p in rows}

    def promotions(self, fingerprint: str, stage: str | None = None) -> list[PromotionRecord]:
        sql = "SELECT * FROM promotions WHERE strategy_fingerprint=?"
        args: tuple[Any, ...] = (fingerprint,)
        if stage is not None:
            sql += " AND stage=?"
            args = (fingerprint, stage)
        rows = self._db.execute(sql + " ORDER BY promotion_id", args).fetchall()
        return [PromotionRecord(*r) for r in rows]

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read-only escape hatch for reports and tests."""
        return list(self._db.execute(sql, args).fetchall())

    # -- internals -----------------------------------------------------------------
    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self._db = db

        def __enter__(self) -> None:
            self._db.execute("BEGIN")

        def __exit__(
            self,
            exc_type: type[BaseException] | None,
            exc: BaseException | None,
            tb: TracebackType | None,
        ) -> None:
            self._db.execute("ROLLBACK" if exc_type else "COMMIT")

    def _transaction(self) -> "RunStore._Tx":
        return RunStore._Tx(self._db)

    transaction = _transaction


def _reason(exc: BaseException) -> str:
    """The cause of an OSError or sqlite3 error, for a one-line message."""
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc)
