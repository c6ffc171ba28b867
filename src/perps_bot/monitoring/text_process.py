"""A backtest's run-log and journal lines written by a second process.

Why: a 500k-candle backtest writes about 125,000 journal lines and 60,000 run-log lines
(every order, fill, round trip and periodic equity), and serialising and formatting
their numbers (orjson, `%.4f` of every PnL figure, the times) cost its main thread
about a fifth of its time. The GIL keeps a thread from doing that beside the
orchestrator; a process does, on the second core, as it does the store's rows
(storage.writer_process). The main thread only appends each line's values to a
queue (monitoring.text_channel) and hands the queue on in frames (storage.child_process).

Where the lines go stays the same: while `lines_behind` is on, every line of the run
log's files (the per-fill lines as recipes, any other record formatted as usual) and of
the journal goes through the queue, in the order it was logged, and the process appends
them with the same code the main thread would have run (`Journal.write`, `hot_log`'s
recipes, `BufferedRotatingHandler.write_line`, rotation included), so the files end
with the same text. A line's time is the wall clock when it was logged, not when it is
written. At the end (`lines_behind` leaving) the main thread waits for the process,
then writes the files itself again.

The process starts only once `START_ITEMS` lines are queued, and is sent its first
frame once it has had the time to start; a short run starts none and writes its queue
itself at the end, and a run where no process can start does the same, with one
warning. A fault the process
meets writing (a full disk) is raised on the main thread as the `LogPathError` the
journal would have raised, at the next frame or at the end.
"""

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from perps_bot import compiled
from perps_bot.monitoring.hot_log import RECIPES, HotLog, LogStamps, log_line
from perps_bot.monitoring.journal import Journal
from perps_bot.monitoring.logs import BufferedRotatingHandler, LogPathError, handlers_of
from perps_bot.monitoring.text_channel import JOURNAL, TEXT, Item, TextChannel
from perps_bot.storage.child_process import ChildProcess
from perps_bot.storage.child_process import serve as serve_frames

#: items per frame: marshal's cost per item grows with the frame (its table of the
#: objects it has seen): 1,024 cost about two thirds of 8,192 each, measured
FRAME_ITEMS = 1_024
#: items queued when the process is started (a short run starts none), and then held
#: while it starts (about 0.15 s), not pushed into a pipe nobody reads yet
START_ITEMS = 2_048
STARTING_ITEMS = 8_192

log = logging.getLogger(__name__)


class LineSink:
    """Writes queued items to a journal file and run-log files: the process's, or the
    main thread's own at the end of a run that started none."""

    def __init__(self, journal: Journal, files: Sequence[BufferedRotatingHandler]) -> None:
        self._root = journal
        self._views: dict[tuple[str, str | None], Journal] = {}
        self._files = list(files)
        self._stamps = LogStamps()

    def write(self, items: list[Item]) -> None:
        files, stamps = self._files, self._stamps
        for item in items:
            kind = item[0]
            if kind == JOURNAL:
                _, run_id, portfolio, type_, ts, correlation_id, data = item
                self._journal(run_id, portfolio).write(type_, ts, data, correlation_id)
            elif kind == TEXT:
                files[item[1]].write_line(item[2])
            else:
                _, targets, now, prefix, recipe, args = item
                line = log_line(stamps, now, prefix, RECIPES[recipe](*args))
                for number in targets:
                    files[number].write_line(line)

    def flush(self) -> None:
        self._root.flush()
        for handler in self._files:
            handler.flush()

    def _journal(self, run_id: str, portfolio: str | None) -> Journal:
        key = (run_id, portfolio)
        view = self._views.get(key)
        if view is None:
            root = self._root
            view = Journal(root.path, run_id, portfolio=portfolio, sharing=root)
            self._views[key] = view
        return view


class TextProcess:
    """The main thread's end: the queue (`channel`) and the process it is handed to."""

    def __init__(self, journal: Journal, files: Sequence[BufferedRotatingHandler]) -> None:
        self._journal = journal
        self._files = list(files)
        self._child: ChildProcess | None = None
        self._started = False
        self.channel = TextChannel(self._due, START_ITEMS)

    def _due(self, channel: TextChannel) -> None:
        if not self._started:
            self._started = True
            channel.due = STARTING_ITEMS
            self._start()
        elif self._child is not None:
            self._child.answered()  # a fault met so far: raised here, not at the end
            self._child.send(channel.take())
            channel.due = FRAME_ITEMS

    def _start(self) -> None:
        setup = {
            "compiled": compiled.is_compiled(Journal.__module__),
            "journal": str(self._journal.path),
            "files": [[h.baseFilename, h.maxBytes, h.backupCount] for h in self._files],
        }
        try:
            self._child = ChildProcess(
                "perps_bot.monitoring.line_writer",
                [json.dumps(setup)],
                what=f"the run's log files in {Path(self._files[0].baseFilename).parent}",
                fault=LogPathError,
            )
        except OSError as exc:
            self.channel.due = 1 << 62  # the queue is written here at the end
            log.warning("no process to write the log files (%s): they are written here", exc)

    def close(self) -> list[Item]:
        """Hand the last items on and wait for the process; the items nobody wrote (no
        process ran), for the caller to write."""
        child, self._child = self._child, None
        if child is None:
            return self.channel.take()
        try:
            child.send(self.channel.take())
        finally:
            child.close()
        return []


@contextlib.contextmanager
def lines_behind(
    journal: Journal, hot_logs: Sequence[HotLog], logger: logging.Logger
) -> Iterator[None]:
    """The run log's and the journal's lines written by a process while in the block
    (see the module doc). Nothing changes where a line needs the main thread: a
    journal someone listens to, a run whose per-fill lines go through the standard
    logging path (a console at INFO), a log without a file."""
    files = [h for h in handlers_of(logger) if isinstance(h, BufferedRotatingHandler)]
    numbers = {id(h): i for i, h in enumerate(files)}
    own = all(id(h) in numbers for hot in hot_logs for h in hot.files)
    if not files or not own or any(hot.standard for hot in hot_logs):
        yield
        return
    process = TextProcess(journal, files)
    if not journal.write_behind(process.channel):
        yield
        return
    for i, handler in enumerate(files):
        handler.write_behind(process.channel, i)
    for hot in hot_logs:
        hot.write_behind(process.channel, tuple(numbers[id(h)] for h in hot.files))
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):  # the run's own failure is the one to tell
            _stop(process, journal, hot_logs, files)
        raise
    _stop(process, journal, hot_logs, files)


def _stop(
    process: TextProcess,
    journal: Journal,
    hot_logs: Sequence[HotLog],
    files: Sequence[BufferedRotatingHandler],
) -> None:
    """Wait for the process, then write here again (what no process wrote first)."""
    try:
        left = process.close()
    finally:
        for hot in hot_logs:
            hot.write_behind(None)
        for handler in files:
            handler.write_behind(None)
        journal.write_behind(None)
    if left:
        sink = LineSink(journal, files)
        sink.write(left)
        sink.flush()


def _handle(sink: LineSink, items: list[Item]) -> str:
    """One frame: its lines written and flushed; the answer line."""
    try:
        sink.write(items)
        sink.flush()
    except LogPathError as fault:
        return f"fault {fault}"
    except Exception as exc:  # answered to the main process as one line
        return f"error {type(exc).__name__}: {exc}"
    return "ok"


def serve(setup: dict[str, Any], stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """The child's loop over the files `setup` names."""
    journal = Journal(Path(setup["journal"]), "")
    files = [
        BufferedRotatingHandler(Path(name), max_bytes=max_bytes, backups=backups)
        for name, max_bytes, backups in setup["files"]
    ]
    sink = LineSink(journal, files)
    try:
        serve_frames(lambda items: _handle(sink, items), stdin, stdout)
    finally:
        journal.close()
        for handler in files:
            handler.close()
