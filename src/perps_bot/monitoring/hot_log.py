"""The per-fill lines of the run log (fills, funding, periodic equity) and their `PnL`
fragment: a module of its own so the simulations can run it compiled
(perps_bot.compiled), apart from the logging handlers it writes through
(monitoring.logs), which subclass the standard library's.

Each such line is a recipe (`RECIPES`: a function of plain values) so that a backtest
can have it formatted by the process that writes its lines (monitoring.text_process):
formatting the numbers of these lines cost its main thread about a tenth of its time.
The same function formats the line wherever it runs, so the text is the same.
"""

import logging
import time
from collections.abc import Callable
from typing import Any

from perps_bot.domain import THREE_DIGITS, iso_utc
from perps_bot.metrics.trade_lines import trade_closed_text
from perps_bot.monitoring.logs import ASCTIME, BufferedRotatingHandler, handlers_of, hosted_run
from perps_bot.monitoring.text_channel import RECIPE, TextChannel


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
        self._stamps = LogStamps()
        #: while a process writes the lines: where they go, and its numbers of the files
        self._channel: TextChannel | None = None
        self._targets: tuple[int, ...] = ()

    @property
    def standard(self) -> bool:
        """Its lines go through `Logger.info` (another INFO consumer, or INFO off)."""
        return self._standard

    @property
    def files(self) -> list[BufferedRotatingHandler]:
        return list(self._files)

    def write_behind(self, channel: TextChannel | None, targets: tuple[int, ...] = ()) -> None:
        """Hand the lines to `channel` (None: write them again) as recipes, for the
        files numbered `targets` there."""
        self._channel, self._targets = channel, targets

    def info(self, message: str) -> None:
        if self._standard:
            self._logger.info(message)
            return
        line = log_line(self._stamps, time.time(), self._prefix, message)
        for handler in self._files:
            handler.write_line(line)

    def emit(self, recipe: int, args: tuple[Any, ...]) -> None:
        """The line `RECIPES[recipe](*args)`: formatted now, or by the process that
        writes the lines (with the time it has now)."""
        channel = self._channel
        if channel is None:
            self.info(RECIPES[recipe](*args))
        else:
            channel.add((RECIPE, self._targets, time.time(), self._prefix, recipe, args))


class LogStamps:
    """The time a run-log line starts with (local asctime, then milliseconds), the
    date and time formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._stamp = ""

    def at(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime(ASCTIME, time.localtime(second))
        return f"{self._stamp},{THREE_DIGITS[int((now - second) * 1000)]}"


def log_line(stamps: LogStamps, now: float, prefix: str, message: str) -> str:
    """A line in the file handler's format (`prefix`: level, tag and logger name)."""
    return f"{stamps.at(now)}{prefix}{message}\n"


def pnl_text(realized: float, unrealized: float, fees: float, funding: float, equity: float) -> str:
    """The `PnL ...` fragment shared by every PnL line: realized, unrealized, total, equity.

    total = realized price PnL - fees + funding + unrealized (the ledger invariant's PnL).
    """
    total = realized - fees + funding + unrealized
    # one %-format: the same digits as f"{x:.4f}" each, a quarter fewer instructions
    # (every fill's and equity line's fragment)
    return _PNL_FORMAT % (realized, unrealized, fees, funding, total, equity)


_PNL_FORMAT = "PnL realized=%.4f unrealized=%.4f fees=%.4f funding=%.4f total=%.4f equity=%.4f"


def head_text(ts: int, replayed: str, tag: str) -> str:
    """How a per-fill line starts: the simulated time, ` (replayed)` for a resumed run's
    replay of what it logged before the stop, the portfolio's tag."""
    return f"{iso_utc(ts)}{replayed} {tag}"


def fill_text(
    ts: int, replayed: str, tag: str, label: str, symbol: str, side: str, size: float,
    price: float, fee: float, position: float, realized: float, unrealized: float,
    fees: float, funding: float, equity: float,
) -> str:  # fmt: skip
    """A FILL (or LIQUIDATION) line: the fill, the position after it, the PnL."""
    trade = trade_text(symbol, side, size, price)
    pnl = pnl_text(realized, unrealized, fees, funding, equity)
    return _FILL_LINE % (head_text(ts, replayed, tag), label, trade, fee, position, pnl)


def trade_text(symbol: str, side: str, size: float, price: float) -> str:
    """A fill's trade: `BTC-PERP buy 0.01 @ 97000`."""
    return _TRADE_TEXT % (symbol, side, size, price)


def trade_closed_line(
    ts: int, replayed: str, tag: str, symbol: str, side: str, size: float, entry: float,
    exit_price: float, net: float, ret: float | None, held_s: float, reason: str,
) -> str:  # fmt: skip
    """The TRADE CLOSED line of the round trip a fill at `ts` closed."""
    head = head_text(ts, replayed, tag)
    return trade_closed_text(head, symbol, side, size, entry, exit_price, net, ret, held_s, reason)


def equity_text(
    ts: int, replayed: str, tag: str, realized: float, unrealized: float, fees: float,
    funding: float, equity: float,
) -> str:  # fmt: skip
    """The periodic EQUITY line."""
    pnl = pnl_text(realized, unrealized, fees, funding, equity)
    return f"{head_text(ts, replayed, tag)}EQUITY | {pnl}"


def funding_text(
    ts: int, replayed: str, tag: str, symbol: str, rate: float, mark: float, position: float,
    payment: float, realized: float, unrealized: float, fees: float, funding: float,
    equity: float,
) -> str:  # fmt: skip
    """A FUNDING line: the settlement, then the PnL after it."""
    pnl = pnl_text(realized, unrealized, fees, funding, equity)
    return (
        f"{head_text(ts, replayed, tag)}FUNDING {symbol} rate={rate:.6f} mark={mark:.6g}"
        f" pos={position:+.6g} payment={payment:.6f} | {pnl}"
    )


#: a fill's trade and line (%-formats: the digits of f"{x:.6g}" and the like, about a
#: quarter fewer instructions per number, once per fill)
_TRADE_TEXT = "%s %s %.6g @ %.6g"
_FILL_LINE = "%s%s %s fee=%.4f pos=%+.6g | %s"

#: the per-fill lines by number (`HotLog.emit`'s `recipe`)
FILL = 0
TRADE_CLOSED = 1
EQUITY = 2
FUNDING = 3
RECIPES: tuple[Callable[..., str], ...] = (fill_text, trade_closed_line, equity_text, funding_text)
