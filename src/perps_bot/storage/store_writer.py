"""Writing a run store: the rows of a run, through buffers.

Writes are buffered and flushed in batches (one transaction per flush) because a
commit per event would dominate a backtest; fills are the exception: the orchestrator
stores them right after every fill batch (`flush()`; a dry run: with its checkpoint,
`flush_with`) so an acknowledged fill is never lost to a crash. Equity rows may be lost
up to one flush interval on a crash, which only thins the curve.

A run whose rows need not be on disk the moment they exist (a backtest) hands each
full batch to a writer process instead (`write_behind`, storage.writer_process): the
same statements in the same order, on the second core. An explicit `flush()` (the
run's end, a checkpoint) still writes here, after the process's batches: its caller
reads or stores next, and a short run that never fills a batch never waits for the
process at all.
"""

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import astuple
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from perps_bot.domain import Fill, Order, OrderUpdate
from perps_bot.storage import equity_blocks, plot_series
from perps_bot.storage.connection import StoreFault
from perps_bot.storage.equity_blocks import EquityBuffer
from perps_bot.storage.orders import INSERT_SQL as ORDERS_INSERT
from perps_bot.storage.orders import order_row
from perps_bot.storage.records import RunRecord
from perps_bot.storage.store_file import StoreFile
from perps_bot.storage.writer_process import Batch, WriterProcess, write_batch

#: rows buffered before they are written in one transaction
BATCH_ROWS = 50_000

log = logging.getLogger(__name__)


class StoreWriter(StoreFile):
    """The writing half of `RunStore`: runs, orders, fills, funding, equity and the
    other per-run rows, and the buffers between them and the file."""

    def __init__(
        self, path: Path | str, *, read_only: bool = False, batch_rows: int = BATCH_ROWS
    ) -> None:
        super().__init__(path, read_only=read_only)
        #: rows buffered before they are written in one transaction
        self.batch_rows = batch_rows
        self._pending: dict[str, list[tuple[Any, ...]]] = {t: [] for t in self._INSERTS}
        # an order's row is rewritten at every lifecycle step: only its latest state
        # needs writing, so pending order rows are kept by (run_id, client_id)
        self._pending_orders: dict[tuple[str, str], tuple[Any, ...]] = {}
        # a position's row is replaced at every fill: likewise only its latest state,
        # by (run_id, symbol), last written last (the row order replacing gives)
        self._pending_positions: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._pending_rows = 0
        self._fill_seq: dict[str, int] = {}
        #: equity snapshots waiting for the next flush, per run (a run with several
        #: portfolios writes one curve per portfolio and the account's, interleaved)
        self._equity: dict[str, EquityBuffer] = {}
        self._equity_block: dict[str, int] = {}
        self._behind: WriterProcess | None = None
        self._behind_wanted = False
        #: buffered rows at which `_buffers_due` looks at the buffers: a batch, or half
        #: of one while a writer process is wanted but not started
        self._due = batch_rows

    # -- lifecycle -----------------------------------------------------------------
    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._stop_writing_behind()
        self._db.close()

    def write_behind(self) -> None:
        """From now on a writer process writes the full batches (storage.writer_process):
        for a run whose rows need not be on disk the moment they exist. It starts once
        half a batch is buffered, so it is ready when the batch is full, and a short run
        never starts one. A database in memory has no file for a second process to
        open: it stays written here."""
        if str(self.path) != ":memory:":
            self._behind_wanted = True
            self._due = min(self._due, self.batch_rows // 2)

    def _start_writing_behind(self) -> None:
        """Start the writer process; where none can start (no process left to the
        user, no memory), the rows are written here, as before, and the log says so."""
        self._due = self.batch_rows
        try:
            self._behind = WriterProcess(self.path)
        except OSError as exc:
            self._behind_wanted = False
            log.warning("no writer process for %s (%s): its rows are written here", self.path, exc)
            return
        self._db.before_statement = self._drain

    def _drain(self) -> None:
        """Before a statement of this connection: the writer process's batches are
        written."""
        assert self._behind is not None
        with self._writer_faults():
            self._behind.drain()

    def _stop_writing_behind(self) -> None:
        behind, self._behind = self._behind, None
        if behind is not None:
            self._db.before_statement = None
            with self._writer_faults():
                behind.close()

    @contextlib.contextmanager
    def _writer_faults(self) -> Iterator[None]:
        """A fault the writer process met fails this store's later writes, as a fault
        of an inline write does (store_file.Transaction)."""
        try:
            yield
        except StoreFault as fault:
            self._failed_write = fault
            raise

    def __enter__(self) -> Self:
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
    }
    _POSITIONS_INSERT = "INSERT OR REPLACE INTO positions VALUES (?,?,?,?,?)"

    def _queue(self, table: str, row: tuple[Any, ...]) -> None:
        self._pending[table].append(row)
        self._counted()

    def _counted(self) -> None:
        """One more row buffered: the buffers are written once they hold a batch."""
        self._pending_rows += 1
        if self._pending_rows >= self._due:
            self._buffers_due(self._pending_rows)

    def flush(self) -> None:
        """Write every buffered row in one transaction (its BEGIN waits for the writer
        process's batches first)."""
        if not self._pending_rows and not any(self._equity.values()):
            return
        with self.transaction():
            write_batch(self._db, self._take_pending())

    def _buffers_due(self, rows: int) -> None:
        """The buffers hold `rows` rows, at least `_due`: time to start the writer
        process, or to write a batch."""
        if self._behind is None and self._behind_wanted:
            self._start_writing_behind()
        if rows >= self.batch_rows:
            self._batch_full()

    def _batch_full(self) -> None:
        """The buffers hold a batch: the writer process takes it, where there is one
        (and this connection is in no transaction of its own), else it is written here."""
        if self._behind is None or self._db.in_transaction:
            self.flush()
            return
        if self._failed_write is not None:
            raise self._failed_write
        with self._writer_faults():
            self._behind.send(self._take_pending())

    def flush_if_due(self) -> None:
        """Flush once the buffers hold a batch (equity snapshots sent to an
        `equity_sink` are not counted as they come: the caller checks between
        batches of events)."""
        rows = self._pending_rows + sum(map(len, self._equity.values()))
        if rows >= self._due:
            self._buffers_due(rows)

    def flush_with(self, write: Callable[[sqlite3.Connection], None]) -> None:
        """Write every buffered row and then call `write` in the same transaction, so
        what `write` stores (a checkpoint) is consistent with the rows before it."""
        with self.transaction():
            write_batch(self._db, self._take_pending())
            write(self._db)

    def _take_pending(self) -> Batch:
        """Every buffered row as one batch of statements, in the order they are written;
        the buffers are left empty."""
        batch: Batch = []
        if self._pending_orders:
            batch.append((ORDERS_INSERT, list(self._pending_orders.values())))
            self._pending_orders.clear()
        for table, rows in self._pending.items():
            if rows:
                batch.append((self._INSERTS[table], rows))
                self._pending[table] = []
        if self._pending_positions:
            batch.append((self._POSITIONS_INSERT, list(self._pending_positions.values())))
            self._pending_positions.clear()
        for run_id, buffer in self._equity.items():
            if len(buffer):
                block = self._equity_block.get(run_id)
                if block is None:
                    block = equity_blocks.next_block(self._db, run_id)
                rows, self._equity_block[run_id] = buffer.take_rows(block)
                batch.append((equity_blocks.INSERT_SQL, rows))
        self._pending_rows = 0
        return batch

    def next_equity_block(self, run_id: str) -> int:
        """The block number the run's next equity snapshots will be written to."""
        block = self._equity_block.get(run_id)
        return equity_blocks.next_block(self._db, run_id) if block is None else block

    def forget_cached(self, run_id: str) -> None:
        """Drop what is cached about `run_id`'s rows (they were rewound)."""
        self._fill_seq.pop(run_id, None)
        self._equity_block.pop(run_id, None)

    def create_run(self, run: RunRecord) -> None:
        """The run's row: its fields in the table's column order (the order `RunStore`
        reads them back in)."""
        row = astuple(run)
        with self.transaction():
            self._db.execute(f"INSERT INTO runs VALUES ({','.join('?' * len(row))})", row)

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
        with self.transaction():
            self._db.execute(
                "UPDATE runs SET status=?, start_ts=?, end_ts=?, error_lines=?,"
                " warning_lines=?, detail=? WHERE run_id=?",
                (status, start_ts, end_ts, error_lines, warning_lines, detail, run_id),
            )

    def add_run_detail(self, run_id: str, text: str) -> None:
        """Append to a run's detail (e.g. what a later bot recovered for it)."""
        with self.transaction():
            self._db.execute(
                "UPDATE runs SET detail = COALESCE(detail || '; ', '') || ? WHERE run_id = ?",
                (text, run_id),
            )

    def set_strategy_fingerprint(self, run_id: str, fingerprint: str) -> None:
        """What a run trades changed as it ran (the session server's new prompt)."""
        with self.transaction():
            self._db.execute(
                "UPDATE runs SET strategy_fingerprint=? WHERE run_id=?", (fingerprint, run_id)
            )

    def set_initial_balance(self, run_id: str, balance: float) -> None:
        """Live runs start from the balance the exchange reports, not the profile's."""
        with self.transaction():
            self._db.execute("UPDATE runs SET initial_balance=? WHERE run_id=?", (balance, run_id))

    def add_order(self, run_id: str, order: Order, update: OrderUpdate | None = None) -> None:
        """Write the order's row (its state as of `update`, when given)."""
        self._pending_orders[(run_id, order.client_id)] = order_row(run_id, order, update)
        self._counted()

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
                fill.side._value_,
                fill.size,
                fill.price,
                fill.fee,
                fill.liquidity._value_,
                fill.client_id,
                fill.correlation_id,
                fill.reason,
                1 if fill.is_liquidation else 0,
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
        self._counted()

    def equity_sink(self, run_id: str) -> EquityBuffer:
        """Where `run_id`'s snapshots go: `add_ts(ts)` then `add_values([equity, cash,
        unrealized_pnl])`. The hot path of a backtest (a snapshot per candle); the caller
        calls `flush_if_due` between batches."""
        buffer = self._equity.get(run_id)
        if buffer is None:
            buffer = self._equity[run_id] = EquityBuffer()
            buffer.run_id = run_id
        return buffer

    def put_plot_series(self, run_id: str, symbol: str, ts: Any, values: dict[str, Any]) -> None:
        """Replace a symbol's sampled price and indicator series (numpy arrays)."""
        with self.transaction():
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
        """Write the position's row (every fill does: a backtest's batch holds thousands
        of states of one row, of which only the last is stored)."""
        key = (run_id, symbol)
        pending = self._pending_positions
        pending.pop(key, None)
        pending[key] = (run_id, symbol, size, entry_price, ts)
        self._counted()

    def add_promotion(
        self, fingerprint: str, strategy: str, stage: str, run_id: str, criteria_json: str
    ) -> int:
        with self.transaction():
            cur = self._db.execute(
                "INSERT INTO promotions (strategy_fingerprint, strategy, stage, run_id,"
                " created_at, criteria) VALUES (?,?,?,?,?,?)",
                (fingerprint, strategy, stage, run_id, int(time.time() * 1000), criteria_json),
            )
            return int(cur.lastrowid or 0)
