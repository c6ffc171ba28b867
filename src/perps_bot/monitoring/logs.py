"""Human-readable run log (`logs/perps_bot.log`, rotated by size) and a counter of
ERROR/WARNING lines, which promotion criteria read ("no ERROR log lines").

Every fill, funding payment, liquidation and periodic equity update is one line
containing `PnL`, so `tail -f logs/perps_bot.log | grep PnL` follows a run.
"""

import logging
import logging.handlers
from pathlib import Path

LOGGER_NAME = "perps_bot"


class BufferedRotatingHandler(logging.handlers.RotatingFileHandler):
    """RotatingFileHandler without its per-line costs: the stock one formats every record
    twice (once to size it) and seeks and flushes the file for every line, which dominated
    a backtest's logging. Here the size is counted as lines are written, and lines are
    flushed by `flush()`, which the orchestrator calls once per batch of events."""

    def __init__(self, filename: Path, *, max_bytes: int, backups: int) -> None:
        super().__init__(filename, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self._size = filename.stat().st_size if filename.exists() else 0

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        return 0 < self.maxBytes <= self._size

    def doRollover(self) -> None:
        super().doRollover()
        self._size = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.shouldRollover(record):
                self.doRollover()
            if self.stream is None:
                self.stream = self._open()
            line = self.format(record) + self.terminator
            self.stream.write(line)
            self._size += len(line)
        except Exception:
            self.handleError(record)


class LineCounter(logging.Handler):
    """Counts records at WARNING and ERROR or above for the run record."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.errors = 0
        self.warnings = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.errors += 1
        else:
            self.warnings += 1


def setup_logging(
    log_dir: Path, level: str, *, max_bytes: int, backups: int, console_level: int | None = None
) -> LineCounter:
    """Point the `perps_bot` logger at the rotating run log; return the line counter.

    Re-entrant: handlers from a previous call (tests run many bots) are replaced.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(LOGGER_NAME)
    close_logging()
    logger.setLevel(level)
    logger.propagate = False
    file_handler = BufferedRotatingHandler(
        log_dir / "perps_bot.log", max_bytes=max_bytes, backups=backups
    )
    file_handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    logger.addHandler(file_handler)
    if console_level is not None:
        console = logging.StreamHandler()
        console.setLevel(console_level)
        console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        logger.addHandler(console)
    counter = LineCounter()
    logger.addHandler(counter)
    return counter


def close_logging() -> None:
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)


def pnl_text(realized: float, unrealized: float, fees: float, funding: float, equity: float) -> str:
    """The `PnL ...` fragment shared by every PnL line: realized, unrealized, total, equity.

    total = realized price PnL - fees + funding + unrealized (the ledger invariant's PnL).
    """
    total = realized - fees + funding + unrealized
    return (
        f"PnL realized={realized:.4f} unrealized={unrealized:.4f} fees={fees:.4f} "
        f"funding={funding:.4f} total={total:.4f} equity={equity:.4f}"
    )
