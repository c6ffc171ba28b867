"""The HTML report: one self-contained file (inline CSS and SVG, no scripts, no network).

It carries no run id, path or generation time, so the same run always renders
the same bytes and two reports can be diffed.
"""

from html import escape
from typing import Any

from perps_bot.domain import iso_utc
from perps_bot.metrics.charts import drawdown_svg, equity_svg
from perps_bot.metrics.definitions import CRITERIA_DEFINITIONS, METRIC_DEFINITIONS, NULL_RULE
from perps_bot.metrics.formatting import display_criterion, display_metric, params_text
from perps_bot.metrics.report import Report

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px 32px;
color:#111827;background:#fff;max-width:1200px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.sub{color:#4b5563;margin:0 0 16px}
.verdict{display:inline-block;padding:4px 12px;border-radius:6px;font-weight:600;color:#fff}
.ok{background:#15803d}.bad{background:#b91c1c}
table{border-collapse:collapse;font-size:13px}
th,td{border-bottom:1px solid #e5e7eb;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f3f4f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
td.pass{color:#15803d;font-weight:600}td.fail{color:#b91c1c;font-weight:600}
.cols{display:flex;gap:32px;flex-wrap:wrap;align-items:flex-start}
.def{color:#6b7280;font-size:12px;max-width:560px}
.chart svg{width:100%;height:auto}
.trades td{white-space:nowrap}
"""


def _cell(text: str, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<td{attr}>{escape(text)}</td>"


def _metrics_table(report: Report) -> str:
    rows = []
    for name, value in report.metrics.items():
        rows.append(
            "<tr>"
            + _cell(name)
            + _cell(display_metric(name, value), "n")
            + _cell(METRIC_DEFINITIONS[name], "def")
            + "</tr>"
        )
    return (
        "<table><tr><th>metric</th><th>value</th><th>definition</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _criteria_table(report: Report) -> str:
    rows = []
    for c in report.criteria:
        rows.append(
            "<tr>"
            + _cell(c.name)
            + _cell(display_criterion(c.name, c.value), "n")
            + _cell(f"{c.op} {display_criterion(c.name, c.threshold)}", "n")
            + _cell("PASS" if c.passed else "FAIL", "pass" if c.passed else "fail")
            + _cell(CRITERIA_DEFINITIONS[c.name], "def")
            + "</tr>"
        )
    return (
        "<table><tr><th>criterion</th><th>value</th><th>threshold</th><th>result</th>"
        "<th>rule</th></tr>" + "".join(rows) + "</table>"
    )


def _denials_table(denials: dict[str, int]) -> str:
    if not denials:
        return "<p>No risk denials.</p>"
    rows = "".join(
        f"<tr>{_cell(code)}{_cell(str(n), 'n')}</tr>" for code, n in sorted(denials.items())
    )
    return f"<table><tr><th>reason code</th><th>count</th></tr>{rows}</table>"


def _num(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def _trades_table(report: Report) -> str:
    if not report.trades:
        return "<p>No closed trades.</p>"
    head = (
        "<tr><th>#</th><th>symbol</th><th>side</th><th>open (UTC)</th><th>close (UTC)</th>"
        "<th>size</th><th>entry</th><th>exit</th><th>gross</th><th>fees</th><th>funding</th>"
        "<th>net</th><th>exit reason</th><th>R</th><th>MAE</th><th>MFE</th></tr>"
    )
    rows = []
    for t in report.trades:
        net_cls = "n pass" if t.net_pnl > 0 else ("n fail" if t.net_pnl < 0 else "n")
        rows.append(
            "<tr>"
            + _cell(str(t.trade_id), "n")
            + _cell(t.symbol)
            + _cell(t.side)
            + _cell(iso_utc(t.open_ts))
            + _cell(iso_utc(t.close_ts))
            + _cell(f"{t.size:.8g}", "n")
            + _cell(f"{t.entry_price:.8g}", "n")
            + _cell(f"{t.exit_price:.8g}", "n")
            + _cell(_num(t.gross_pnl, 4), "n")
            + _cell(_num(t.fees, 4), "n")
            + _cell(_num(t.funding, 4), "n")
            + _cell(_num(t.net_pnl, 4), net_cls)
            + _cell(t.exit_reason)
            + _cell(_num(t.r_multiple, 2), "n")
            + _cell(_num(t.mae, 4), "n")
            + _cell(_num(t.mfe, 4), "n")
            + "</tr>"
        )
    return f'<table class="trades">{head}{"".join(rows)}</table>'


def _summary_line(summary: dict[str, Any]) -> str:
    parts = [
        f"{summary['kind']} run, profile {summary['profile']}, {summary['status']}",
        f"{summary['start'] or '?'} to {summary['end'] or '?'} ({summary['days'] or 0:.2f} days)",
        f"initial balance {summary['initial_balance']:,.2f}, "
        f"final equity {summary['final_equity']:,.2f}",
        f"fingerprint {summary['strategy_fingerprint']}, code {summary['code_version']}",
    ]
    return " · ".join(escape(p) for p in parts)


def render_html(report: Report) -> str:
    summary = report.run_summary()
    passed = sum(c.passed for c in report.criteria)
    total = len(report.criteria)
    verdict_cls = "ok" if report.passed else "bad"
    verdict = f"{'PASSED' if report.passed else 'FAILED'}: {passed}/{total} criteria"
    params = escape(params_text(summary["strategy_params"]))
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            f"<title>perps-bot report: {escape(report.run.strategy)}</title>",
            f"<style>{_CSS}</style></head><body>\n",
            f"<h1>perps-bot report: {escape(report.run.strategy)} {params}</h1>\n",
            f'<p class="sub">{_summary_line(summary)}</p>\n',
            f'<p><span class="verdict {verdict_cls}">{escape(verdict)}</span></p>\n',
            "<h2>Validation criteria</h2>\n",
            _criteria_table(report),
            f'\n<p class="def">{escape(NULL_RULE)}</p>\n',
            '<h2>Equity</h2>\n<div class="chart">',
            equity_svg(report.chart),
            '</div>\n<h2>Drawdown</h2>\n<div class="chart">',
            drawdown_svg(report.chart),
            "</div>\n<h2>Metrics</h2>\n",
            '<div class="cols"><div>',
            _metrics_table(report),
            "</div><div><h2>Risk denials</h2>",
            _denials_table(report.metrics["denials"]),
            "</div></div>\n",
            f"<h2>Trades ({len(report.trades)})</h2>\n",
            _trades_table(report),
            "\n</body></html>\n",
        ]
    )
