"""A run store's batched writes done by a second process, for runs whose rows need not
be on disk the moment they exist (a backtest: a rerun reproduces every row exactly).

Why: the rows of a 500k-candle backtest (orders, fills, excursions, the equity blocks)
cost its main thread about a tenth of its time in SQLite (statements, B-tree pages,
WAL frames). The GIL keeps a thread from running that beside the orchestrator; a
process does, on the second core. The main thread only serialises each batch of rows
(`marshal`: C code, a small fraction of writing them) and goes on.

How: `WriterProcess` starts `python -m perps_bot.storage.writer_process DB` (a
storage.child_process) and sends it each batch as one frame: the list of (statement,
rows) in the order the inline writer runs them. The child writes a batch in one
transaction, the same statements as the inline path (`write_batch`), and answers
`ok`, or `fault <one line>` for a fault of the file or its disk (full, damaged, not
writable: the same `StoreFault` text as inline), or `error <one line>` (raised as a
`StoreFault` too: either way the file lacks rows the run made). Batches are written
in the order sent, so the file ends with the same rows as a run that wrote them itself.

The store drains the process (waits for every answer) before any statement of its own
connection, so a read sees every row written before it and the two connections never
wait on each other's lock. A fault answered by the child is raised there, on the main
thread, as the inline write would have raised it, and every later write fails with it.
"""

import sys
from pathlib import Path
from typing import IO, Any

from perps_bot.storage import child_process
from perps_bot.storage.connection import GuardedConnection, StoreFault, set_write_mode

#: one batch: (statement, rows) pairs, run in order in one transaction
Batch = list[tuple[str, list[tuple[Any, ...]]]]


def write_batch(db: GuardedConnection, batch: Batch) -> None:
    """Run a batch's statements (the caller holds the transaction)."""
    for sql, rows in batch:
        db.executemany(sql, rows)


class WriterProcess(child_process.ChildProcess):
    """The main process's end: `send` a batch, `drain` the answers."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            "perps_bot.storage.writer_process",
            [str(path)],
            what=f"database {path}",
            fault=StoreFault,
        )


def _write(db: GuardedConnection, batch: Batch) -> str:
    """One batch in one transaction; the answer line."""
    try:
        db.execute("BEGIN")
        write_batch(db, batch)
        db.execute("COMMIT")
    except StoreFault as fault:
        _rollback(db)
        return f"fault {fault}"
    except Exception as exc:  # answered to the main process as one line
        _rollback(db)
        return f"error {type(exc).__name__}: {exc}"
    return "ok"


def _rollback(db: GuardedConnection) -> None:
    if db.in_transaction:
        db.execute("ROLLBACK")


def serve(path: str, stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """The child's loop (child_process.serve) over the database at `path`."""
    db = GuardedConnection(path, isolation_level=None)
    set_write_mode(db)
    try:
        child_process.serve(lambda batch: _write(db, batch), stdin, stdout)
    finally:
        db.close()


if __name__ == "__main__":
    child_process.settle()
    serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer)
    child_process.leave()
