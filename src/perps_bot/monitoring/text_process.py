"""A backtest's run-log and journal lines written by a second process.

Why: a 500k-candle backtest writes about 48,000 run-log lines (every fill, closed round
trip and hourly equity: SPEC 5's `PnL` lines) and 125,000 journal lines (a signal, an
order, its updates, the fill and the closed round trip per flip), and formatting them
(`%.4f` of every PnL figure, the times, each journal line's dict and its JSON) cost its
main thread about a seventh of its instructions. The GIL keeps a thread from doing that
beside the orchestrator; a process does, on the second core, as it does the store's
rows (storage.writer_process). The main thread only appends each line's values to a
queue (monitoring.text_channel) and hands the queue on in frames
(storage.child_process).

A journal line goes as the values of its recipe (monitoring.journal_lines), not as its
dict: measured side by side, handing the dicts over (their `marshal`) cost the main
thread as much as serialising them with orjson. A journal someone listens to (the
metrics and alerts of a bot run) stays on the main thread.

Where the lines go stays the same: while `lines_behind` is on, every line of the run
log's files (the per-fill lines as recipes, any other record formatted as usual) and
of the journal (the recipes' values, any other line's bytes) goes through the queue,
in the order it was logged, and the process appends them with the same code the main
thread would have run (`hot_log`'s recipes, `BufferedRotatingHandler.write_line`,
rotation included, `Journal.write_here`), so the files end with the same bytes. A
line's time is the wall clock when it was logged, not when it is written. At the end
(`lines_behind` leaving) the main thread waits for the process, then writes the files
itself again.

The queue is written by the main thread itself, a frame at a time, until `START_ITEMS`
lines have been logged: the process costs the run its start and a wait at the end,
which only a long run's lines pay back (a 15k-candle backtest, about 5,000 lines, was 4%
slower with one). A run known to be long (`lines_behind(long_run=True)`: a backtest of
many candles) starts it after its first frame instead: the 12,288 lines written here
cost a 500k-candle backtest about 33 ms. Then the process starts and, once it has had
the time to start, is handed every frame; where none can start, the main thread goes on
writing them, with one warning. A file the process cannot write (a full disk) is raised
on the main thread as one `LogPathError` line, at the next frame or at the end: the run
stops and says why, where the main thread's logging would have printed a traceback and
gone on.
"""

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from perps_bot import compiled
from perps_bot.domain import short_path
from perps_bot.monitoring.hot_log import RECIPES, HotLog, LogStamps, log_line
from perps_bot.monitoring.journal import Journal
from perps_bot.monitoring.journal_lines import BUILDERS, TYPES
from perps_bot.monitoring.logs import BufferedRotatingHandler, LogPathError, handlers_of
from perps_bot.monitoring.text_channel import JOURNAL, RECIPE, TEXT, Item, TextChannel
from perps_bot.storage.child_process import ChildProcess
from perps_bot.storage.child_process import serve as serve_frames

#: items per frame: a few hundred kB marshalled, well inside the 1 MB pipe
FRAME_ITEMS = 1_024
#: lines logged before the process is started (written here until then), and the lines
#: then held while it starts (about 0.15 s), not pushed into a pipe nobody reads yet
START_ITEMS = 12_288
STARTING_ITEMS = 8_192

log = logging.getLogger(__name__)


class LineSink:
    """Writes queued items to run-log files and the journal (`journals`: its views, by
    number): the process's, or the main thread's own (before the process starts, or
    where none can)."""

    def __init__(
        self, files: Sequence[BufferedRotatingHandler], journals: Sequence[Journal] = ()
    ) -> None:
        self._files = list(files)
        self._journals = list(journals)
        self._stamps = LogStamps()

    def write(self, items: list[Item]) -> None:
        files, stamps, journals = self._files, self._stamps, self._journals
        for item in items:
            kind = item[0]
            if kind == TEXT:
                files[item[1]].write_here(item[2])
            elif kind == RECIPE:
                _, targets, now, prefix, recipe, args = item
                line = log_line(stamps, now, prefix, RECIPES[recipe](*args))
                for number in targets:
                    files[number].write_here(line)
            elif kind == JOURNAL:
                _, number, ts, correlation_id, recipe, args = item
                data = BUILDERS[recipe](*args)
                journals[number].write_here(TYPES[recipe], ts, data, correlation_id)
            else:  # JOURNAL_RAW
                journals[0].write_raw(item[1])

    def flush(self) -> None:
        for handler in self._files:
            handler.flush()
        if self._journals:
            self._journals[0].flush()

    def sizes(self) -> list[int]:
        """What each file's rotation has counted (`BufferedRotatingHandler.size`)."""
        return [handler.size for handler in self._files]


class TextProcess:
    """The main thread's end: the queue (`channel`) and the process it is handed to."""

    def __init__(
        self,
        files: Sequence[BufferedRotatingHandler],
        journal: Journal | None = None,
        start_items: int = START_ITEMS,
    ) -> None:
        self._files = list(files)
        self._journal = journal  # written behind too (None: on the main thread)
        self._here = LineSink(files, journal.views if journal is not None else ())
        self._child: ChildProcess | None = None
        self._logged = 0  # lines written here so far: the process starts at `_start_items`
        self._start_items = start_items
        self.channel = TextChannel(self._due, FRAME_ITEMS)

    def _due(self, channel: TextChannel) -> None:
        child = self._child
        if child is not None:
            child.answered()  # a fault met so far: raised here, not at the end
            child.send(channel.take())
            channel.due = FRAME_ITEMS
            return
        items = channel.take()
        self._here.write(items)
        if self._logged < 0:
            return  # the process could not start: the lines stay here
        self._logged += len(items)
        if self._logged >= self._start_items:
            self._logged = -1  # tried: once
            self._start(channel)

    def _start(self, channel: TextChannel) -> None:
        for i, handler in enumerate(self._files):  # its lines on disk, its file closed
            handler.write_behind(channel, i)
        journal = self._journal
        if journal is not None:  # its lines on disk (its file stays open: appended to)
            journal.flush()
        setup = {
            "compiled": compiled.is_compiled(HotLog.__module__),
            "files": [[h.baseFilename, h.maxBytes, h.backupCount, h.size] for h in self._files],
            "journal": None if journal is None else [str(journal.path), journal.view_ids()],
        }
        what = f"the run log {self._files[0].baseFilename}"
        if journal is not None:
            what += f" and the journal {journal.path}"
        try:
            self._child = ChildProcess(
                "perps_bot.monitoring.line_writer", [json.dumps(setup)], what=what,
                fault=LogPathError,
            )  # fmt: skip
        except OSError as exc:
            log.warning("no process to write the run log (%s): it is written here", exc)
            return
        channel.due = STARTING_ITEMS

    def close(self) -> list[int] | None:
        """Hand the last items on and wait for the process, or write them here where
        none ran; the sizes the process counted (None: none ran)."""
        child, self._child = self._child, None
        if child is None:
            self._here.write(self.channel.take())
            self._here.flush()
            return None
        try:
            child.send(self.channel.take())
        finally:
            child.close()
        sizes: list[int] = json.loads(child.answer)
        return sizes


@contextlib.contextmanager
def lines_behind(
    hot_logs: Sequence[HotLog],
    logger: logging.Logger,
    journal: Journal | None = None,
    *,
    long_run: bool = False,
) -> Iterator[None]:
    """The run log's lines, and `journal`'s, written by a process while in the block
    (see the module doc); `long_run`: the block is known to be long (a backtest of many
    candles), so the process starts once the first frame of lines is written, not after
    `START_ITEMS`. Nothing changes where a line needs the main thread: a run
    whose per-fill lines go through the standard logging path (a console at INFO), a
    log without a file, a per-fill line for a file that is not the logger's, a journal
    someone listens to (`Journal.write_behind`)."""
    files = [h for h in handlers_of(logger) if isinstance(h, BufferedRotatingHandler)]
    numbers = {id(h): i for i, h in enumerate(files)}
    own = all(id(h) in numbers for hot in hot_logs for h in hot.files)
    if not files or not own or any(hot.standard for hot in hot_logs):
        yield
        return
    behind = journal if journal is not None and journal.may_write_behind() else None
    process = TextProcess(files, behind, 1 if long_run else START_ITEMS)
    try:  # a file that fails as it is handed on (its flush) is handed back with the others
        for i, handler in enumerate(files):
            handler.write_behind(process.channel, i)
        for hot in hot_logs:
            hot.write_behind(process.channel, tuple(numbers[id(h)] for h in hot.files))
        if behind is not None:
            behind.write_behind(process.channel)
        yield
    except BaseException:
        with contextlib.suppress(Exception):  # the run's own failure is the one to tell
            _stop(process, hot_logs, files, behind)
        raise
    _stop(process, hot_logs, files, behind)


def _stop(
    process: TextProcess,
    hot_logs: Sequence[HotLog],
    files: Sequence[BufferedRotatingHandler],
    journal: Journal | None,
) -> None:
    """Wait for the process (or write its last lines here), then write here again."""
    sizes: list[int] | None = None
    try:
        sizes = process.close()
    finally:
        if journal is not None:
            journal.write_behind(None)
        for hot in hot_logs:
            hot.write_behind(None)
        for i, handler in enumerate(files):
            handler.write_behind(None)
            if sizes is not None:  # rotation counts on from where the process left it
                handler.size = sizes[i]


class _StrictHandler(BufferedRotatingHandler):
    """The process's handler: a line it cannot write fails the frame (answered to the
    run as one line) instead of printing a traceback nobody sees."""

    def handleError(self, record: logging.LogRecord) -> None:
        raise  # the error being handled (write_line calls this from its except)


def _handle(sink: LineSink, items: list[Item], name: str) -> str:
    """One frame: its lines written and flushed; the answer line."""
    try:
        sink.write(items)
        sink.flush()
        sizes = sink.sizes()
    except OSError as exc:  # the disk or the file: the line a log directory's fault gets
        return f"fault {LogPathError(f'cannot write {name}', exc)}"
    except LogPathError as exc:  # the journal's file, in the journal's words
        return f"fault {exc}"
    except Exception as exc:  # answered to the main process as one line
        return f"error {type(exc).__name__}: {exc}"
    return f"ok {json.dumps(sizes)}"  # the main thread counts on from them


def serve(setup: dict[str, Any], stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """The child's loop over the files `setup` names."""
    files = []
    for name, max_bytes, backups, size in setup["files"]:
        handler = _StrictHandler(Path(name), max_bytes=max_bytes, backups=backups)
        handler.size = size  # as the main thread counted (characters, not bytes)
        files.append(handler)
    journals: list[Journal] = []
    if setup.get("journal") is not None:
        path, views = setup["journal"]
        journals.append(Journal(Path(path), views[0][0], portfolio=views[0][1]))
        journals += [
            journals[0].for_portfolio(run_id, portfolio) for run_id, portfolio in views[1:]
        ]
    sink = LineSink(files, journals)
    name = short_path(Path(setup["files"][0][0]))
    try:
        serve_frames(lambda items: _handle(sink, items, name), stdin, stdout)
    finally:
        for handler in files:
            handler.close()
        if journals:
            journals[0].close()
