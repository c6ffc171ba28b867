"""The run store: one SQLite database per profile, WAL mode.

`RunStore` is built in three layers, one job each: `store_file` opens, checks and
upgrades the database and runs transactions; `store_writer` buffers and writes the
rows of a run; this module reads them back for reports, resumes and tests.
"""

from collections.abc import Iterator
from typing import Any

from perps_bot.storage import equity_blocks, plot_series
from perps_bot.storage.connection import StoreError
from perps_bot.storage.equity_blocks import EquityChunk
from perps_bot.storage.orders import SELECT_SQL as ORDERS_SELECT
from perps_bot.storage.plot_series import SymbolSeries
from perps_bot.storage.records import (
    ExcursionRecord,
    ExcursionRow,
    FillRecord,
    FillRow,
    FundingRecord,
    OrderRecord,
    PromotionRecord,
    RunRecord,
)
from perps_bot.storage.store_writer import StoreWriter

__all__ = ["RunStore", "StoreError"]


class RunStore(StoreWriter):
    """Writes and reads runs. Not thread-safe; one per process."""

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

    def fill_rows(self, run_id: str) -> list[FillRow]:
        """The fill columns round trips read, as `FillRow` tuples in `seq` order (what
        `fills` gives, without a record per row or the columns no trade uses)."""
        rows: list[FillRow] = self._db.execute(
            "SELECT symbol, side, size, price, fee, realized_pnl, position_after, ts,"
            " stop_price, reason, is_liquidation FROM fills WHERE run_id=? ORDER BY seq",
            (run_id,),
        ).fetchall()
        return rows

    def fill_count(self, run_id: str) -> int:
        """How many fills the run has (liquidations included)."""
        row = self._db.execute("SELECT COUNT(*) FROM fills WHERE run_id=?", (run_id,)).fetchone()
        return int(row[0])

    def liquidation_count(self, run_id: str) -> int:
        """How many of the run's fills were liquidations."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM fills WHERE run_id=? AND is_liquidation", (run_id,)
        ).fetchone()
        return int(row[0])

    def orders(self, run_id: str) -> list[OrderRecord]:
        """Every order of the run in creation order, with its latest state."""
        self.flush()
        return [OrderRecord(*row) for row in self._db.execute(ORDERS_SELECT, (run_id,))]

    def order_portfolio(self, client_id: str) -> str | None:
        """The portfolio that placed the order `client_id` (the latest run's that did, in
        this database), None if no run stored it: whose an earlier run's order is."""
        row = self._db.execute(
            "SELECT portfolio FROM orders WHERE client_id=? ORDER BY ts DESC LIMIT 1",
            (client_id,),
        ).fetchone()
        return None if row is None else str(row[0])

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
        return [ExcursionRecord(*r) for r in self.excursion_rows(run_id)]

    def excursion_rows(self, run_id: str) -> list[ExcursionRow]:
        """The run's excursions as `ExcursionRow` tuples, by close time then as stored."""
        rows: list[ExcursionRow] = self._db.execute(
            "SELECT symbol, open_ts, close_ts, mae, mfe FROM excursions WHERE run_id=?"
            " ORDER BY close_ts, rowid",
            (run_id,),
        ).fetchall()
        return rows

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

    def promoted_fingerprints(self, strategy: str, stage: str) -> list[str]:
        """The fingerprints with a promotion of `strategy` to `stage`, oldest first."""
        rows = self._db.execute(
            "SELECT strategy_fingerprint FROM promotions WHERE strategy=? AND stage=?"
            " GROUP BY strategy_fingerprint ORDER BY MIN(promotion_id)",
            (strategy, stage),
        ).fetchall()
        return [str(r[0]) for r in rows]

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read-only escape hatch for reports and tests."""
        return list(self._db.execute(sql, args).fetchall())
