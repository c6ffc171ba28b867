"""The HTML report: one self-contained, interactive file (SPEC 15).

Static HTML carries everything that is a table (criteria, metrics with their
warnings, monthly returns, breakdowns, open positions, denials), so the verdict
reads without scripts. The charts (Plotly) and the paginated, sortable trade table
are drawn by `assets/report.js` from one JSON block (`html_data`).

plotly.min.js (4.8 MB) is inlined once, gzip-compressed and base64-encoded
(about 2 MB), and unpacked in the page with the browser's DecompressionStream:
the file still needs no network, and a run with 10,000 trades stays well under
5 MB. The gzip stream is made with a fixed level and mtime, so the page carries
no run id, path or wall-clock time and the same run renders the same bytes.
"""

import base64
import gzip
import importlib.util
from functools import cache
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from perps_bot.metrics.definitions import (
    CRITERIA_DEFINITIONS,
    GATE_CRITERIA_DEFINITIONS,
    METRIC_DEFINITIONS,
    NULL_RULE,
)
from perps_bot.metrics.formatting import display_criterion, display_metric, params_text
from perps_bot.metrics.html_data import chart_data, script_json
from perps_bot.metrics.html_tables import (
    breakdown_tables,
    cell,
    denials_table,
    monthly_table,
    open_positions_table,
)
from perps_bot.metrics.report import Report


def asset(name: str) -> str:
    """A file of `metrics/assets` (the page's CSS and scripts)."""
    return (resources.files("perps_bot.metrics") / "assets" / name).read_text(encoding="utf-8")


def page_script(name: str) -> str:
    """The inline <script> of a page: the plotly loader, then the page's own code."""
    return f"<script>{asset('plotly_loader.js')}{asset(name)}</script>"


@cache
def plotly_gzip_base64() -> str:
    """plotly.min.js from the installed plotly package, gzip (level 9, mtime 0), base64.
    Located without importing plotly (its import is slow and not needed)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the plotly package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    packed = gzip.compress(path.read_bytes(), compresslevel=9, mtime=0)
    return base64.b64encode(packed).decode("ascii")


def _metrics_table(report: Report) -> str:
    warned = {w.metric: w.reason for w in report.warnings}
    rows = []
    for name, value in report.metrics.items():
        shown = escape(display_metric(name, value))
        if name in warned:
            shown += f' <span class="warn" title="{escape(warned[name])}">&#9888;</span>'
        rows.append(
            f'<tr>{cell(name)}<td class="n">{shown}</td>'
            f"{cell(METRIC_DEFINITIONS[name], 'def')}</tr>"
        )
    return (
        "<table><tr><th>metric</th><th>value</th><th>definition</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _criteria_table(report: Report) -> str:
    rules = CRITERIA_DEFINITIONS | GATE_CRITERIA_DEFINITIONS
    rows = []
    for c in report.criteria:
        rows.append(
            "<tr>"
            + cell(c.name)
            + cell(display_criterion(c.name, c.value), "n")
            + cell(f"{c.op} {display_criterion(c.name, c.threshold)}", "n")
            + cell("PASS" if c.passed else "FAIL", "pass" if c.passed else "fail")
            + cell(rules.get(c.name, ""), "def")
            + "</tr>"
        )
    return (
        "<table><tr><th>criterion</th><th>value</th><th>threshold</th><th>result</th>"
        "<th>rule</th></tr>" + "".join(rows) + "</table>"
    )


def _warnings_box(report: Report) -> str:
    if not report.warnings:
        return ""
    items = "".join(
        f"<li><b>{escape(w.metric)}</b> {escape(w.reason)}</li>" for w in report.warnings
    )
    return (
        '<div class="warnbox" id="warnings"><b>&#9888; Too little data for some metrics</b>'
        f" (marked &#9888; below): treat them as anecdotes, not evidence.<ul>{items}</ul></div>\n"
    )


def _summary_line(summary: dict[str, Any]) -> str:
    parts = [
        f"{summary['kind']} run, profile {summary['profile']}, {summary['status']}",
        f"{summary['start'] or '?'} to {summary['end'] or '?'} ({summary['days'] or 0:.2f} days)",
        f"initial balance {summary['initial_balance']:,.2f}, "
        f"final equity {summary['final_equity']:,.2f}",
        f"fingerprint {summary['strategy_fingerprint']}, code {summary['code_version']}",
    ]
    return " · ".join(escape(p) for p in parts)


def _portfolio_section(report: Report) -> str:
    """One portfolio: its prices with its trades, breakdowns, positions and trade list."""
    pid = escape(report.run.portfolio)
    params = escape(params_text(report.run_summary()["strategy_params"]))
    prices = "".join(
        f'<div class="chart" id="price-{pid}-{i}"></div>' for i in range(len(report.prices))
    )
    if not prices:
        prices = "<p>No price series stored for this run.</p>"
    trades = f'<div id="trades-{pid}"></div>' if report.trades else "<p>No closed trades.</p>"
    return "".join(
        [
            f'<section class="portfolio" id="portfolio-{pid}">',
            f"<h2>Portfolio {pid}: {escape(report.run.strategy)} {params}</h2>\n",
            '<p class="note">Price with the strategy\'s indicators; markers: &#9650; long'
            " entry, &#9660; short entry, &#10005; exit (hover for the trade).</p>",
            prices,
            "<h3>Breakdowns</h3>",
            breakdown_tables(report.breakdowns),
            "<h3>Open positions at the end</h3>",
            open_positions_table(report.open_positions),
            f"<h3>Trades ({len(report.trades)})</h3>\n",
            trades,
            "</section>\n",
        ]
    )


def _portfolios_table(report: Report) -> str:
    """A run with several portfolios: each one's figures (the page above is the account)."""
    if not report.portfolios:
        return ""
    rows = "".join(
        f"<tr><td>{escape(p.run.portfolio)}</td><td>{escape(p.run.strategy)}</td>"
        f'<td class="num">{p.run.initial_balance:,.2f}</td>'
        f'<td class="num">{p.final_equity:,.2f}</td>'
        f'<td class="num">{escape(display_metric("return_pct", p.metrics["return_pct"]))}</td>'
        f'<td class="num">{p.metrics["trades"]}</td>'
        f'<td class="num">{sum(c.passed for c in p.criteria)}/{len(p.criteria)}</td></tr>'
        for p in report.portfolios
    )
    return (
        '<h2>Portfolios</h2>\n<p class="note">Each strategy with its own capital; the figures'
        " above are the whole account (their sum).</p><table><thead><tr><th>id</th>"
        "<th>strategy</th><th>capital</th><th>equity</th><th>return</th><th>trades</th>"
        f"<th>validation</th></tr></thead><tbody>{rows}</tbody></table>\n"
    )


def render_html(report: Report) -> str:
    summary = report.run_summary()
    passed = sum(c.passed for c in report.criteria)
    total = len(report.criteria)
    verdict_cls = "ok" if report.passed else "bad"
    verdict = f"{'PASSED' if report.passed else 'FAILED'}: {passed}/{total} criteria passed"
    params = escape(params_text(summary["strategy_params"]))
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            f"<title>perps-bot report: {escape(report.run.strategy)}</title>",
            f"<style>{asset('report.css')}</style></head><body>\n",
            f"<h1>perps-bot report: {escape(report.run.strategy)} {params}</h1>\n",
            f'<p class="sub">{_summary_line(summary)}</p>\n',
            f'<p><span class="verdict {verdict_cls}">{escape(verdict)}</span></p>\n',
            '<p id="load-error"></p>',
            _warnings_box(report),
            "<h2>Validation criteria</h2>\n",
            _criteria_table(report),
            f'\n<p class="def">{escape(NULL_RULE)}</p>\n',
            "<h2>Equity and drawdown</h2>\n",
            '<p class="note">Equity per time bucket (line: close, band: low to high) and'
            " drawdown from the running peak. Buy and hold (click it in the legend): the"
            " initial balance in the run's symbols from their first price, no fees or"
            " funding. Drag to zoom, double-click to reset.</p>",
            '<div class="chart" id="equity-chart"></div>\n',
            "<h2>Monthly returns</h2>\n",
            monthly_table(report.monthly),
            "<h2>Metrics</h2>\n",
            '<div class="cols"><div>',
            _metrics_table(report),
            "</div><div><h2>Risk denials</h2>",
            denials_table(report.metrics["denials"]),
            "</div></div>\n",
            _portfolios_table(report),
            *(_portfolio_section(p) for p in report.portfolios or (report,)),
            '<script type="application/json" id="report-data">',
            script_json(chart_data(report)),
            '</script>\n<script type="application/octet-stream" id="plotly-gz">',
            plotly_gzip_base64(),
            "</script>\n",
            page_script("report.js"),
            "\n</body></html>\n",
        ]
    )
