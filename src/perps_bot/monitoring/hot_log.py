"""The per-fill lines of the run log (fills, funding, periodic equity) and their `PnL`
fragment: a module of its own so the simulations can run it compiled
(perps_bot.compiled), apart from the logging handlers it writes through
(monitoring.logs), which subclass the standard library's.
"""

import logging
import time

from perps_bot.domain import THREE_DIGITS
from perps_bot.monitoring.logs import ASCTIME, BufferedRotatingHandler, handlers_of, hosted_run


class HotLog:
    """INFO lines of the per-fill path (fills, funding, periodic equity), written
    straight to the run log file in the file's usual format.

    Why not `Logger.info`: a backtest writes one line per fill and one per equity
    interval (tens of thousands), and building a LogRecord, looking up the caller's
    frame and formatting through the Formatter cost about 20 us a line there, a tenth
    of the whole run. The line here is the same text the handler's formatter would
    write (local asctime with milliseconds, padded level, logger name), the clock is
    formatted once per second, and rotation is the handler's own. When the logger
    has any other INFO consumer (a console handler, a test's handler) or INFO is off,
    lines go through the standard path, so nothing is skipped.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._files: list[BufferedRotatingHandler] = []
        standard = not logger.isEnabledFor(logging.INFO)
        for handler in handlers_of(logger):
            if handler.level > logging.INFO:
                continue  # never sees INFO (the WARNING line counter)
            if isinstance(handler, BufferedRotatingHandler) and handler.formatter is not None:
                self._files.append(handler)
            else:
                standard = True
        self._standard = standard or not self._files
        hosted = hosted_run()
        tag = hosted.tag if hosted is not None else self._files[0].tag if self._files else ""
        self._prefix = f" INFO    {tag}{logger.name}: "
        self._second = -1
        self._stamp = ""

    def info(self, message: str) -> None:
        if self._standard:
            self._logger.info(message)
            return
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime(ASCTIME, time.localtime(second))
        millis = THREE_DIGITS[int((now - second) * 1000)]
        line = f"{self._stamp},{millis}{self._prefix}{message}\n"
        for handler in self._files:
            handler.write_line(line)


def pnl_text(realized: float, unrealized: float, fees: float, funding: float, equity: float) -> str:
    """The `PnL ...` fragment shared by every PnL line: realized, unrealized, total, equity.

    total = realized price PnL - fees + funding + unrealized (the ledger invariant's PnL).
    """
    total = realized - fees + funding + unrealized
    # one %-format: the same digits as f"{x:.4f}" each, a quarter fewer instructions
    # (every fill's and equity line's fragment)
    return _PNL_FORMAT % (realized, unrealized, fees, funding, total, equity)


_PNL_FORMAT = "PnL realized=%.4f unrealized=%.4f fees=%.4f funding=%.4f total=%.4f equity=%.4f"
