"""Equity and drawdown charts as inline SVG, rendered with matplotlib off-screen.

The Figure API is used directly (no pyplot): nothing touches a GUI backend or
global figure state of the host process. SVG output is made deterministic by a
fixed `svg.hashsalt` (element ids), no Date/Creator metadata and text kept as
text (`svg.fonttype: none`), so a report's bytes depend only on the run.
matplotlib is imported lazily: only the HTML report needs it.
"""

import io
import re
from typing import Any

from perps_bot.metrics.equity import ChartSeries

DAY_MS = 86_400_000
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)
_RC: Any = {
    "svg.hashsalt": "perps-bot-report",
    "svg.fonttype": "none",
    "date.epoch": "1970-01-01T00:00:00",
    "font.size": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_WIDTH_IN = 11.0
_HEIGHT_IN = 3.0


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    start = text.find("<svg")
    text = text[start:] if start >= 0 else text
    # the RDF <metadata> block only names the format; drop it (and its external URIs)
    return _METADATA.sub("", text)


def _axes(title: str) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(_WIDTH_IN, _HEIGHT_IN), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(True, color="#e5e7eb", linewidth=0.6)
    return fig, ax


def _date_axis(ax: Any) -> None:
    from datetime import UTC

    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = ConciseDateFormatter(locator, tz=UTC)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)


def _days(ts: list[int]) -> list[float]:
    return [t / DAY_MS for t in ts]


def equity_svg(chart: ChartSeries) -> str:
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig, ax = _axes("Equity (quote currency, UTC)")
        if chart.ts:
            x = _days(chart.ts)
            if len(x) > 1:
                ax.fill_between(x, chart.low, chart.high, color="#93c5fd", alpha=0.5, lw=0)
                ax.plot(x, chart.close, color="#1d4ed8", lw=1.2)
            else:
                ax.plot(x, chart.close, "o", color="#1d4ed8")
            _date_axis(ax)
            ax.ticklabel_format(axis="y", style="plain", useOffset=False)
        else:
            ax.text(0.5, 0.5, "no equity rows", ha="center", va="center", transform=ax.transAxes)
        return _svg(fig)


def drawdown_svg(chart: ChartSeries) -> str:
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig, ax = _axes("Drawdown from running peak (%)")
        if chart.ts:
            x = _days(chart.ts)
            dd = [-100.0 * d for d in chart.drawdown]
            if len(x) > 1:
                ax.fill_between(x, dd, 0.0, color="#fca5a5", lw=0, step="post")
                ax.plot(x, dd, color="#b91c1c", lw=1.0, drawstyle="steps-post")
            else:
                ax.plot(x, dd, "o", color="#b91c1c")
            ax.set_ylim(top=0.0)
            if min(dd) == 0.0:
                ax.set_ylim(bottom=-1.0)
            _date_axis(ax)
        else:
            ax.text(0.5, 0.5, "no equity rows", ha="center", va="center", transform=ax.transAxes)
        return _svg(fig)
