"""The parts of `perps-bot report` that go beyond one run's own numbers: a walk-forward
run's windows (in-sample vs out-of-sample) and deflated Sharpe ratio, and the Monte
Carlo of the trade order (`--monte-carlo N`), and the plan history of a run whose
strategy planned (cli.report_plans). Added to the JSON as `walkforward`, `monte_carlo`
and `plans`, to the table and to the HTML page as sections of their own."""

import json
from datetime import datetime
from html import escape
from typing import Any

from rich.console import Console
from rich.table import Table

from perps_bot.cli.report_plans import plans_extra, plans_html, render_plans
from perps_bot.metrics import Report
from perps_bot.metrics.formatting import ReportError, display_metric
from perps_bot.metrics.montecarlo import bootstrap
from perps_bot.metrics.walkforward import with_evidence
from perps_bot.storage import RunStore


def evidence(
    store: RunStore, report: Report, monte_carlo: int | None, seed: int
) -> tuple[Report, dict[str, Any]]:
    """The report with its evidence criteria, and the extra sections it has."""
    report, section = with_evidence(store, report)
    extra: dict[str, Any] = plans_extra(store, report)
    if section is not None:
        extra["walkforward"] = section
    if monte_carlo is not None:
        if not report.run.initial_balance > 0:  # a live run on an empty wallet stores 0
            raise ReportError(
                f"--monte-carlo needs a positive initial balance: run {report.run.run_id}"
                f" started with {report.run.initial_balance:g}"
            )
        pnl = [t.net_pnl for t in report.trades]
        extra["monte_carlo"] = bootstrap(pnl, report.run.initial_balance, monte_carlo, seed)
    return report, extra


def to_json(report: Report, extra: dict[str, Any]) -> str:
    return json.dumps(report.as_dict() | extra, sort_keys=True, indent=2, allow_nan=False) + "\n"


def _params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in params.items())  # fmt: skip


#: the table's columns (the JSON has every SHOWN metric)
COLUMNS = ("trades", "return_pct", "sharpe", "max_drawdown")
HEADERS = ("#", "test", "params", "", "trades", "return", "sharpe", "max dd")


def _windows_rows(section: dict[str, Any]) -> list[list[str]]:
    rows = []
    for w in section["windows"]:
        test = f"{w['test'][0][:10]}+{_days(w['test'])}d"
        for label, key in (("in", "in_sample"), ("out", "out_of_sample")):
            warned = {x["metric"] for x in w.get(f"{key}_warnings", ())}
            shown = [
                display_metric(n, w[key].get(n)) + (" (!)" if n in warned else "") for n in COLUMNS
            ]
            first = (
                [str(w["window"]), test, _params(w["params"])] if label == "in" else ["", "", ""]
            )
            rows.append([*first, label, *shown])
    return rows


def _window_warnings(section: dict[str, Any]) -> list[str]:
    """'(!) window 1 out: sharpe from 6 returns of 1d (fewer than 30)' for each flagged
    in-sample and out-of-sample metric the windows table shows."""
    return [
        f"(!) window {w['window']} {label}: {x['metric']} {x['reason']}"
        for w in section["windows"]
        for label, key in (("in", "in_sample_warnings"), ("out", "out_of_sample_warnings"))
        for x in w.get(key, ())
        if x["metric"] in COLUMNS
    ]


def _days(span: list[str]) -> str:
    start, end = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in span)
    return f"{(end - start).total_seconds() / 86_400:g}"


def _dsr_line(section: dict[str, Any]) -> str:
    dsr = "n/a" if section["dsr"] is None else f"{section['dsr']:.4f}"
    warning = section.get("dsr_warning")  # a run reported before it was kept: none
    return (
        f"deflated Sharpe ratio of the out-of-sample run: {dsr}"
        f"{f' (!) {warning}' if warning else ''} for {section['trials']}"
        f" trials (variance of their per-period Sharpe ratios {section['sharpe_variance']})"
    )


def _mc_rows(mc: dict[str, Any]) -> list[list[str]]:
    if mc["return_pct"] is None:
        return []
    return [
        [f"p{p}", f"{mc['return_pct'][f'p{p}']:.2f}%", f"{mc['max_drawdown'][f'p{p}']:.2%}"]
        for p in (5, 25, 50, 75, 95)
    ]


def _mc_title(mc: dict[str, Any]) -> str:
    loss = "n/a" if mc["loss_probability"] is None else f"{mc['loss_probability']:.1%}"
    return (
        f"Monte Carlo: {mc['paths']} bootstrap paths of the {mc['trades']} trades (seed"
        f" {mc['seed']}), paths that lost money: {loss}"
    )


def render_tables(extra: dict[str, Any], console: Console) -> None:
    if "plans" in extra:
        render_plans(extra["plans"], console)
    section = extra.get("walkforward")
    if section is not None:
        table = Table(title="Walk-forward windows: in-sample vs out-of-sample")
        for name in HEADERS:
            table.add_column(name, no_wrap=True)
        for row in _windows_rows(section):
            table.add_row(*row)
        console.print(table)
        for line in _window_warnings(section):
            console.print(line, highlight=False)
        console.print(_dsr_line(section), highlight=False)
    mc = extra.get("monte_carlo")
    if mc is not None:
        table = Table(title=_mc_title(mc))
        for name in ("percentile", "final return", "max drawdown"):
            table.add_column(name, justify="right")
        for row in _mc_rows(mc):
            table.add_row(*row)
        console.print(table)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n"


def add_html(page: str, extra: dict[str, Any]) -> str:
    """The page with the extra sections before its end."""
    parts = [plans_html(extra["plans"])] if "plans" in extra else []
    section = extra.get("walkforward")
    if section is not None:
        parts.append("<h2>Walk-forward windows: in-sample vs out-of-sample</h2>\n")
        parts.append(_html_table(list(HEADERS), _windows_rows(section)))
        parts += [f"<p>{escape(line)}</p>\n" for line in _window_warnings(section)]
        parts.append(f"<p>{escape(_dsr_line(section))}</p>\n")
    mc = extra.get("monte_carlo")
    if mc is not None:
        parts.append(f"<h2>{escape(_mc_title(mc))}</h2>\n")
        parts.append(_html_table(["percentile", "final return", "max drawdown"], _mc_rows(mc)))
    if not parts:
        return page
    end = page.rfind("</body>")
    return page[:end] + "".join(parts) + page[end:] if end >= 0 else page + "".join(parts)
