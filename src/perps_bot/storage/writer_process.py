"""A run store's batched writes done by a second process, for runs whose rows need not
be on disk the moment they exist (a backtest: a rerun reproduces every row exactly).

Why: the rows of a 500k-candle backtest (orders, fills, excursions, the equity blocks)
cost its main thread about a tenth of its time in SQLite (statements, B-tree pages,
WAL frames). The GIL keeps a thread from running that beside the orchestrator; a
process does, on the second core. The main thread only serialises each batch of rows
(`marshal`: C code, a small fraction of writing them) and goes on.

How: `WriterProcess` starts `python -m perps_bot.storage.writer_process DB` and sends it
each batch as one frame on its stdin: an 8-byte length, then the marshalled list of
(statement, rows) in the order the inline writer runs them. `marshal`, not `pickle`:
rows hold only what it writes (str, int, float, None, bytes), it writes them about
three times faster (no memo, no class lookup), and both ends are the same interpreter
binary, which is all its format promises to read back. The child writes a batch in
one transaction, the same statements as the inline path (`write_batch`), and answers
one line: `ok`, or `fault <one line>` for a fault of the file or its disk (full,
damaged, not writable: the same `StoreFault` text as inline), or `error <one line>`
(raised as a `StoreFault` too: either way the file lacks rows the run made).
Batches are written in the order sent, so the file ends with the same rows as a run
that wrote them itself.

The store drains the process (waits for every answer) before any statement of its own
connection, so a read sees every row written before it and the two connections never
wait on each other's lock. A fault answered by the child is raised there, on the main
thread, as the inline write would have raised it, and every later write fails with it.
If the main process dies, the child finishes the batch it holds and exits at the end of
its input. It runs in a process group of its own, so Ctrl-C at the terminal reaches
only the run, which stops gracefully and still needs its writer for the last rows.
"""

import contextlib
import fcntl
import marshal
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from perps_bot.storage.connection import GuardedConnection, StoreFault, set_write_mode

#: one batch: (statement, rows) pairs, run in order in one transaction
Batch = list[tuple[str, list[tuple[Any, ...]]]]

_LENGTH = 8


def write_batch(db: GuardedConnection, batch: Batch) -> None:
    """Run a batch's statements (the caller holds the transaction)."""
    for sql, rows in batch:
        db.executemany(sql, rows)


class WriterProcess:
    """The main process's end: sends batches, and drains the answers."""

    def __init__(self, path: Path) -> None:
        self._path = path
        # its last words (a traceback) go to a file: a pipe nobody reads while the run
        # goes on could fill up and stall the process
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "perps_bot.storage.writer_process", str(path)],
            env=_same_package(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            process_group=0,  # Ctrl-C at the terminal reaches the run, not its writer
        )
        self._unanswered = 0
        self._sent = 0
        self._fault: StoreFault | None = None
        assert self._proc.stdin is not None
        _widen(self._proc.stdin)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def send(self, batch: Batch) -> None:
        """Hand a batch to the process (it is written after those sent before)."""
        if self._fault is not None:
            raise self._fault
        frame = marshal.dumps(batch, marshal.version)
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            stdin.write(len(frame).to_bytes(_LENGTH, "big"))
            stdin.write(frame)
            stdin.flush()
        except (BrokenPipeError, ValueError):
            raise self._stopped() from None
        self._unanswered += 1
        self._sent += 1

    def drain(self) -> None:
        """Wait until every batch sent is written; raise the fault the first that failed
        met (once: later calls, and reads after them, go on; `send` refuses)."""
        stdout = self._proc.stdout
        assert stdout is not None
        known = self._fault
        while self._unanswered:
            line = stdout.readline().decode("utf-8", "replace").rstrip("\n")
            self._unanswered -= 1
            if not line:
                raise self._stopped()
            kind, _, text = line.partition(" ")
            if kind == "fault" and self._fault is None:
                self._fault = StoreFault(text)
            elif kind != "ok" and self._fault is None:
                self._fault = StoreFault(f"database {self._path}: writing rows failed: {text}")
        if self._fault is not known and self._fault is not None:
            raise self._fault

    def close(self) -> None:
        """Drain, then end the process (its input ends; it exits). A process that was
        never sent a batch (a short run) has nothing to finish: it is stopped at once,
        not waited for while it may still be starting."""
        if not self._sent:
            self._proc.kill()
        try:
            self.drain()
        finally:
            if self._proc.stdin is not None:
                with contextlib.suppress(BrokenPipeError):
                    self._proc.stdin.close()
            self._reap()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._stderr.close()

    def _reap(self) -> int:
        """Wait for the process to exit (it does once its input ends); its status."""
        try:
            return self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            return self._proc.wait()

    def _stopped(self) -> StoreFault:
        """The process is gone: why, in one line (its last line of stderr)."""
        self._unanswered = 0
        code = self._reap()
        self._stderr.seek(0)
        lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
        why = lines[-1] if lines else f"exit status {code}"
        self._fault = StoreFault(f"database {self._path}: the writer process stopped ({why})")
        return self._fault


def _widen(pipe: IO[bytes]) -> None:
    """A frame is megabytes: a pipe of 1 MB (Linux's usual most for a user) instead of
    64 KB passes it in a sixteenth of the handovers between the two processes (a
    third of the main thread's cost of a send, measured). Elsewhere, or where the
    most is lower, the pipe stays as it is."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)


def _same_package() -> dict[str, str]:
    """The environment for the child: this one, with the folder this perps_bot was
    imported from first on its path (a source checkout run by path, or a test's path,
    imports the same code; never another installed copy)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


def _read_frame(stream: IO[bytes]) -> bytes | None:
    """The next frame, or None at the end of the input (a cut frame included)."""
    head = stream.read(_LENGTH)
    if len(head) < _LENGTH:
        return None
    size = int.from_bytes(head, "big")
    body = stream.read(size)
    return body if len(body) == size else None


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
    """The child's loop: write each batch as it comes, answer each, until the input
    ends. After a failed batch every later one gets the same answer without writing
    (the rows after a gap would make a file that looks complete)."""
    db = GuardedConnection(path, isolation_level=None)
    set_write_mode(db)
    failed: str | None = None
    try:
        while (frame := _read_frame(stdin)) is not None:
            answer = failed or _write(db, marshal.loads(frame))
            if answer != "ok":
                failed = answer
            stdout.write(answer.replace("\n", " ").encode() + b"\n")
            stdout.flush()
    finally:
        db.close()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer)
