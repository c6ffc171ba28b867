"""One float format for every report output, so outputs are byte-identical.

Floats are rounded to 12 significant digits before they are written anywhere
(JSON, CSV, HTML). Sums over the same rows in the same order are already
deterministic; the rounding also hides last-bit noise from how a streamed
computation happened to be chunked, which would otherwise change a report's
bytes without changing its meaning.
"""

import math
from collections.abc import Mapping

from perps_bot.domain import PerpsBotError

SIG_DIGITS = 12
CSV_FLOAT = "%.12g"


class ReportError(PerpsBotError):
    """A run that cannot be reported or promoted (bad stored config, ...); one-line message."""


def num(value: float | None) -> float | None:
    """`value` rounded to 12 significant digits; None and non-finite values become None."""
    if value is None or not math.isfinite(value):
        return None
    rounded = float(f"{value:.{SIG_DIGITS}g}")
    return 0.0 if rounded == 0 else rounded  # no "-0.0"


def csv_num(value: float | None) -> str:
    """A CSV cell: 12 significant digits ('%.12g', so 100.0 -> '100'), empty if missing."""
    if value is None or not math.isfinite(value):
        return ""
    return CSV_FLOAT % (value + 0.0)  # + 0.0: no "-0"


def money(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def ratio(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def percent(fraction: float | None, digits: int = 2) -> str:
    """A fraction shown as a percentage (0.125 -> '12.50%')."""
    return "n/a" if fraction is None else f"{fraction * 100:.{digits}f}%"


def display_metric(name: str, value: object) -> str:
    """How the table and HTML show a metric (units per the definitions)."""
    if value is None:
        return "n/a"
    if isinstance(value, dict):  # denials: the total here, the breakdown in its own table
        total = sum(int(v) for v in value.values())
        return f"{total} total" if total else "none"
    if isinstance(value, bool | int):
        return str(value)
    if not isinstance(value, float):
        return str(value)
    if name in ("win_rate", "max_drawdown", "cagr"):
        return percent(value)
    if name == "return_pct":
        return f"{value:.2f}%"
    if name in ("total_pnl", "fees", "funding"):
        return money(value)
    if name == "expectancy":
        return f"{value:.6g}"
    if name == "avg_trade_duration_s":
        return duration_text(value)
    if name == "psr":
        return f"{value:.4f}"
    return ratio(value)


def display_criterion(name: str, value: float | None) -> str:
    """How the table and HTML show a validation criterion's value or threshold."""
    if name in ("win_rate", "max_drawdown"):
        return display_metric(name, value)
    if value is None:
        return "n/a"
    if name in ("trades", "liquidations", "error_lines"):
        return str(int(value))
    return f"{value:.3f}"


def denials_text(denials: Mapping[str, int]) -> str:
    """Denied orders by reason code, as one line's part: `BELOW_MIN_NOTIONAL 86, ...`."""
    return ", ".join(f"{code} {n}" for code, n in sorted(denials.items()))


def duration_text(seconds: float) -> str:
    """Seconds as a short human duration: '45s', '12m 5s', '3h 20m', '2d 4h'."""
    total = round(seconds)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def params_text(params: object) -> str:
    """Strategy parameters as 'fast=10 slow=30' (sorted), or the raw text."""
    if isinstance(params, dict):
        return " ".join(f"{k}={v}" for k, v in sorted(params.items()))
    return str(params)
