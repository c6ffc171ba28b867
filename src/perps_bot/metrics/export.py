"""trades.csv, equity.csv (SPEC 6) and orders.csv (SPEC 8), column names exactly.

Times are ISO-8601 UTC, floats go through the shared rounding, line endings are
"\\n" on every platform: byte-identical files for the same run. equity.csv is
streamed chunk by chunk from the store, so it never holds the curve in memory.
"""

import contextlib
import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

import numpy as np

from perps_bot.domain import iso_utc
from perps_bot.metrics.formatting import CSV_FLOAT, ReportError, csv_num
from perps_bot.metrics.trade_records import TRADE_COLUMNS, Trade
from perps_bot.storage import RunStore

EQUITY_COLUMNS: tuple[str, ...] = ("timestamp", "equity", "cash", "unrealized_pnl")
ORDER_COLUMNS: tuple[str, ...] = (
    "client_id",
    "portfolio",
    "symbol",
    "side",
    "type",
    "size",
    "filled",
    "avg_price",
    "status",
    "reason",
    "created",
    "updated",
)


def trade_row(trade: Trade) -> list[str]:
    return [
        str(trade.trade_id),
        trade.symbol,
        trade.side,
        iso_utc(trade.open_ts),
        iso_utc(trade.close_ts),
        csv_num(trade.size),
        csv_num(trade.entry_price),
        csv_num(trade.exit_price),
        csv_num(trade.gross_pnl),
        csv_num(trade.fees),
        csv_num(trade.funding),
        csv_num(trade.net_pnl),
        trade.exit_reason,
        csv_num(trade.r_multiple),
        csv_num(trade.mae),
        csv_num(trade.mfe),
    ]


def write_trades_csv(trades: Sequence[Trade], path: Path, *, portfolios: bool = False) -> None:
    """`portfolios`: the account of a run with several (SPEC 10): a last column names the
    portfolio of each trade."""
    with written(path) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        if not portfolios:
            writer.writerow(TRADE_COLUMNS)
            writer.writerows(trade_row(t) for t in trades)
            return
        writer.writerow((*TRADE_COLUMNS, "portfolio"))
        writer.writerows([*trade_row(t), t.portfolio] for t in trades)


def equity_lines(store: RunStore, run_id: str) -> Iterator[str]:
    """equity.csv body, one string per chunk (vectorised timestamps: ~1M rows in seconds)."""
    row_format = f"%sZ,{CSV_FLOAT},{CSV_FLOAT},{CSV_FLOAT}"
    for chunk in store.iter_equity(run_id):
        stamps = np.datetime_as_string(chunk.ts.astype("datetime64[ms]"), unit="ms").tolist()
        # + 0.0 turns -0.0 into 0.0 (no "-0" cells)
        lines = [
            row_format % (stamp, e + 0.0, c + 0.0, u + 0.0)
            for stamp, e, c, u in zip(
                stamps,
                chunk.equity.tolist(),
                chunk.cash.tolist(),
                chunk.unrealized_pnl.tolist(),
                strict=True,
            )
        ]
        yield "\n".join(lines) + "\n"


def write_equity_csv(store: RunStore, run_id: str, path: Path) -> None:
    with written(path) as fh:
        fh.write(",".join(EQUITY_COLUMNS) + "\n")
        for block in equity_lines(store, run_id):
            fh.write(block)


def write_orders_csv(store: RunStore, run_id: str, path: Path) -> None:
    """Every order with its final state; `reason` says why it is in that status. A run
    with several portfolios: the orders of all of them."""
    runs = [c.run_id for c in store.children(run_id)] or [run_id]
    orders = [o for r in runs for o in store.orders(r)]
    if len(runs) > 1:
        orders.sort(key=lambda o: o.created)  # stable: a portfolio's own order is kept
    with written(path) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(ORDER_COLUMNS)
        for o in orders:
            writer.writerow(
                [
                    o.client_id,
                    o.portfolio,
                    o.symbol,
                    o.side,
                    o.order_type,
                    csv_num(o.size),
                    csv_num(o.filled),
                    csv_num(o.avg_price),
                    o.status,
                    o.reason,
                    iso_utc(o.created),
                    iso_utc(o.updated),
                ]
            )


def export_csv(
    store: RunStore,
    run_id: str,
    trades: Sequence[Trade],
    directory: Path,
    *,
    portfolios: bool = False,
) -> None:
    """Write trades.csv, equity.csv and orders.csv into `directory` (created if missing);
    `portfolios`: the run is the account of several (trades.csv names each one's)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot create export directory {directory}: {exc.strerror}") from exc
    write_trades_csv(trades, directory / "trades.csv", portfolios=portfolios)
    write_equity_csv(store, run_id, directory / "equity.csv")
    write_orders_csv(store, run_id, directory / "orders.csv")


@contextlib.contextmanager
def written(path: Path) -> Iterator[TextIO]:
    """`path` open for writing text with "\\n" line endings. A path that cannot be
    opened, and a write or close that fails (a full disk), are one ReportError line
    naming it: not only the open can fail."""
    try:
        with path.open("w", newline="\n", encoding="utf-8") as fh:
            yield fh
    except OSError as exc:
        raise ReportError(f"cannot write {path}: {exc.strerror or exc}") from exc
