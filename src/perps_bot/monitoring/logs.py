"""Human-readable run log (`logs/perps_bot.log`, rotated by size) and a counter of
ERROR/WARNING lines, which promotion criteria read ("no ERROR log lines").

Every fill, funding payment, liquidation and periodic equity update is one line
containing `PnL`, so `tail -f logs/perps_bot.log | grep PnL` follows a run. Every
line of a run carries its run id in brackets, so lines of two runs sharing a file
(a restarted bot, a report's traceback) can be told apart; backtests write to their
own file (`log_file_name`) so a backtest never interleaves with a live bot's log.

A line about some portfolios of a run with several names them (`about`, or a logger of
`portfolio_logger`): their counts are theirs, and the account's; a line naming none (the
venue, the feed, the run itself) counts for every portfolio of the run.

A process that hosts several runs at once (the session server) sets the log up once;
each run then lives in `hosted_run_log()`: its lines are tagged and its WARNING/ERROR
lines counted by the asyncio task that logs them (a context variable), not by the
shared handlers, which belong to every run of the process.
"""

import contextlib
import logging
import logging.handlers
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perps_bot.domain import PerpsBotError, short_path
from perps_bot.monitoring.text_channel import TEXT, TextChannel

LOGGER_NAME = "perps_bot"
#: the run log's line format ({tag}: "[run id] " or nothing); `HotLog` writes the same
#: text for its INFO lines
_FILE_FORMAT = "%(asctime)s %(levelname)-7s %(run_tag)s%(name)s: %(message)s"
ASCTIME = "%Y-%m-%d %H:%M:%S"  # logging.Formatter's default_time_format


class LogPathError(PerpsBotError):
    """The log directory or a log file cannot be written (run.log_dir); one line."""

    def __init__(self, what: str, exc: OSError | None = None) -> None:
        """`exc` None: `what` is the whole line (as the process writing the lines
        answered it: monitoring.text_process)."""
        if exc is not None:
            what = f"{what}: {exc.strerror or type(exc).__name__} (check run.log_dir)"
        super().__init__(what)


@dataclass(eq=False, slots=True)
class HostedRun:
    """One run of a process that hosts several (see the module doc)."""

    tag: str = ""  # "[run id] " once the run has one


#: the hosted run of the asyncio task that is logging (None: the process is one run)
_HOSTED: ContextVar[HostedRun | None] = ContextVar("perps_bot_hosted_run", default=None)


class BufferedRotatingHandler(logging.handlers.RotatingFileHandler):
    """RotatingFileHandler without its per-line costs: the stock one formats every record
    twice (once to size it) and seeks and flushes the file for every line, which dominated
    a backtest's logging. Here the size is counted as lines are written, and lines are
    flushed by `flush()`, which the orchestrator calls once per batch of events."""

    def __init__(self, filename: Path, *, max_bytes: int, backups: int, tag: str = "") -> None:
        super().__init__(filename, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self._size = filename.stat().st_size if filename.exists() else 0
        self.tag = tag  # what stands between the level and the logger name
        self.setFormatter(logging.Formatter(_FILE_FORMAT))
        #: while a process writes this file's lines: (channel, this file's number there)
        self._behind: tuple[TextChannel, int] | None = None

    def write_behind(self, channel: TextChannel | None, number: int = 0) -> None:
        """Hand every line to `channel` from now on, as file `number` (None: write here
        again, appending to the file as the process left it, rotated or not; its `size`
        is then the process's count: rotation counts characters, not the file's bytes)."""
        self.acquire()
        try:
            self.flush()
            if self.stream is not None:  # reopened by the next line (a rotation moved it)
                self.stream.close()
                self.stream = None
            self._behind = None if channel is None else (channel, number)
        finally:
            self.release()

    @property
    def size(self) -> int:
        """What rotation counts: the characters written since the file was opened
        (its size when it was opened)."""
        return self._size

    @size.setter
    def size(self, size: int) -> None:
        self._size = size

    def filter(self, record: logging.LogRecord) -> bool:
        """Give the record its run tag: the hosted run's that logs it, else the file's."""
        hosted = _HOSTED.get()
        record.run_tag = hosted.tag if hosted is not None else self.tag
        return super().filter(record)

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        return 0 < self.maxBytes <= self._size

    def doRollover(self) -> None:
        super().doRollover()
        self._size = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self.write_line(line)

    def write_line(self, line: str) -> None:
        """Append one already formatted line (see `HotLog`), rotating by size."""
        if self._behind is not None:
            channel, number = self._behind
            channel.add((TEXT, number, line))
            return
        self.write_here(line)

    def write_here(self, line: str) -> None:
        """`write_line` by this process, even while a process writes the lines (the
        queue's lines before it starts, or where none can)."""
        try:
            if 0 < self.maxBytes <= self._size:
                self.doRollover()
            if self.stream is None:
                self.stream = self._open()
            self.stream.write(line)
            self._size += len(line)
        except Exception:
            self.handleError(logging.makeLogRecord({"msg": line.rstrip("\n")}))


def handlers_of(logger: logging.Logger) -> list[logging.Handler]:
    """Every handler a record of `logger` reaches (walking up while it propagates)."""
    found: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        found.extend(current.handlers)
        current = current.parent if current.propagate else None
    return found


def hosted_run() -> HostedRun | None:
    """The hosted run of the task logging now (None: the process is one run)."""
    return _HOSTED.get()


def logged_by(hosted: HostedRun | None) -> bool:
    """Is the line being logged now one of `hosted`'s (of the hosted run whose task
    logs it)? A handler of the one run of a process (None) takes every line."""
    return hosted is None or _HOSTED.get() is hosted


#: the attribute of a log record naming the portfolios (ids) the line is about
PORTFOLIOS_ATTR = "portfolios"


def about(*portfolios: str) -> dict[str, tuple[str, ...]]:
    """`extra=` of a log line about these portfolios (see the module doc)."""
    return {PORTFOLIOS_ATTR: portfolios}


class _NamesPortfolio(logging.Filter):
    def __init__(self, portfolio: str) -> None:
        super().__init__()
        self.portfolios = (portfolio,)

    def filter(self, record: logging.LogRecord) -> bool:
        setattr(record, PORTFOLIOS_ATTR, self.portfolios)
        return True


def portfolio_logger(name: str, portfolio: str) -> logging.Logger:
    """The logger `name.portfolio`, whose every line is about `portfolio` (a strategy's
    logger in a run with several: its lines say whose they are, and count as its own)."""
    logger = logging.getLogger(f"{name}.{portfolio}")
    if not any(isinstance(f, _NamesPortfolio) for f in logger.filters):
        logger.addFilter(_NamesPortfolio(portfolio))
    return logger


class LineCounter(logging.Handler):
    """Counts records at WARNING and ERROR or above for the run record, and for each
    portfolio the lines about it (a hosted run's counter only those its own task logs)."""

    def __init__(self, hosted: HostedRun | None = None) -> None:
        super().__init__(level=logging.WARNING)
        self.errors = 0
        self.warnings = 0
        self._hosted = hosted
        self._shared = [0, 0]  # [errors, warnings] of the lines naming no portfolio
        self._own: dict[str, list[int]] = {}  # portfolio -> [errors, warnings] about it

    def emit(self, record: logging.LogRecord) -> None:
        if not logged_by(self._hosted):
            return
        error = record.levelno >= logging.ERROR
        if error:
            self.errors += 1
        else:
            self.warnings += 1
        named: tuple[str, ...] = getattr(record, PORTFOLIOS_ATTR, ())
        for counts in [self._own.setdefault(p, [0, 0]) for p in set(named)] or [self._shared]:
            counts[0 if error else 1] += 1

    def state(self) -> dict[str, Any]:
        """The counts so far (a paper run's checkpoint keeps them)."""
        own = {p: list(c) for p, c in self._own.items()}
        return {"run": [self.errors, self.warnings], "shared": list(self._shared), "own": own}

    def restore_state(self, state: dict[str, Any]) -> None:
        """Add the counts of a checkpoint to this process's: a resumed run's lines are
        those of its earlier parts up to the checkpoint (it logs the rest again) and its
        own. A run's counts once replaced them: errors logged before a Ctrl-C and a
        resume no longer counted against its promotion."""
        self.errors += state["run"][0]
        self.warnings += state["run"][1]
        self._shared = [a + b for a, b in zip(self._shared, state["shared"], strict=True)]
        for portfolio, counts in state["own"].items():
            mine = self._own.setdefault(portfolio, [0, 0])
            mine[:] = [a + b for a, b in zip(mine, counts, strict=True)]

    def lines(self, portfolio: str | None = None) -> tuple[int, int]:
        """(errors, warnings) of the run, or of one portfolio of it: the lines about it
        and those about none."""
        if portfolio is None:
            return self.errors, self.warnings
        own = self._own.get(portfolio, [0, 0])
        return self._shared[0] + own[0], self._shared[1] + own[1]


def log_file_name(kind: str) -> str:
    """`perps_bot.log`, or `perps_bot.backtest.log` for backtests (and walk-forwards)."""
    return "perps_bot.backtest.log" if kind in ("backtest", "walkforward") else "perps_bot.log"


def quiet_logging() -> LineCounter:
    """A run that writes no log file (optimisation trials): the `perps_bot` logger keeps
    only the line counter, at WARNING, so INFO lines cost one level check and the
    criteria still count warnings and errors."""
    logger = logging.getLogger(LOGGER_NAME)
    close_logging()
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    counter = LineCounter()
    logger.addHandler(counter)
    return counter


def setup_logging(
    log_dir: Path,
    level: str,
    *,
    max_bytes: int,
    backups: int,
    console_level: int | None = None,
    run_id: str | None = None,
    file_name: str = "perps_bot.log",
) -> LineCounter:
    """Point the `perps_bot` logger at the rotating run log; return the line counter.

    Re-entrant: handlers from a previous call (tests run many bots) are replaced.
    """
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        file_handler = BufferedRotatingHandler(
            log_dir / file_name,
            max_bytes=max_bytes,
            backups=backups,
            tag="" if run_id is None else f"[{run_id}] ",
        )
    except OSError as exc:
        raise LogPathError(f"cannot write the log directory {short_path(log_dir)}", exc) from exc
    logger = logging.getLogger(LOGGER_NAME)
    close_logging()
    logger.setLevel(level)
    logger.propagate = False
    logger.addHandler(file_handler)
    if console_level is not None:
        console = logging.StreamHandler()
        console.setLevel(console_level)
        console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        logger.addHandler(console)
    counter = LineCounter()
    logger.addHandler(counter)
    return counter


def tag_run_log(run_id: str) -> None:
    """Put `[run_id] ` on every following line of the run log (the log is opened before
    the run id exists: checks that fail before a run starts are logged untagged)."""
    hosted = _HOSTED.get()
    if hosted is not None:  # the handlers are shared: tag this run's task only
        hosted.tag = f"[{run_id}] "
        return
    for handler in logging.getLogger(LOGGER_NAME).handlers:
        if isinstance(handler, BufferedRotatingHandler):
            handler.tag = f"[{run_id}] "


@contextlib.contextmanager
def hosted_run_log() -> Iterator[LineCounter]:
    """The log of one run in a process hosting several, which set the log up itself
    (`setup_logging`): yields the counter of this run's WARNING/ERROR lines. Enter it
    in the run's own asyncio task (the tag and the counting follow that task)."""
    hosted = HostedRun()
    counter = LineCounter(hosted)
    logger = logging.getLogger(LOGGER_NAME)
    token = _HOSTED.set(hosted)
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        _HOSTED.reset(token)


def close_logging() -> None:
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)
