"""The terminal form of a report (`perps-bot report`, table format): rich tables.

The same content as the JSON and HTML: metrics with their data warnings, the
criteria, breakdowns by symbol / side / exit rule, monthly returns, the positions
still open at the end and the risk denials.
"""

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from perps_bot.metrics import Report
from perps_bot.metrics.breakdowns import Group
from perps_bot.metrics.formatting import (
    display_criterion,
    display_metric,
    duration_text,
    money,
    params_text,
    percent,
)

_TITLES = {"symbol": "By symbol", "side": "By side", "exit_reason": "By exit reason"}
WARN_MARK = "(!)"


def criteria_table(report: Report) -> Table:
    table = Table(title="Validation criteria", title_justify="left")
    table.add_column("criterion")
    table.add_column("value", justify="right")
    table.add_column("threshold", justify="right")
    table.add_column("result")
    sourced = any(c.source is not None for c in report.criteria)
    if sourced:  # promotion: a threshold of the target stage's profile says so
        table.add_column("threshold from")
    for c in report.criteria:
        result = Text("PASS", style="bold green") if c.passed else Text("FAIL", style="bold red")
        cells: list[str | Text] = [
            c.name,
            display_criterion(c.name, c.value),
            f"{c.op} {display_criterion(c.name, c.threshold)}",
            result,
        ]
        if sourced:
            cells.append(Text("the run's own config" if c.source is None else c.source))
        table.add_row(*cells)
    return table


def metrics_table(report: Report) -> Table:
    warned = {w.metric for w in report.warnings}
    table = Table(title="Metrics", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in report.metrics.items():
        if name == "denials":
            continue
        shown = display_metric(name, value)
        table.add_row(name, f"{shown} {WARN_MARK}" if name in warned else shown)
    return table


def breakdown_table(by: str, groups: Sequence[Group]) -> Table:
    table = Table(title=_TITLES[by], title_justify="left")
    for column, justify in (
        (by, "left"),
        ("trades", "right"),
        ("win rate", "right"),
        ("net PnL", "right"),
        ("avg duration", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for g in groups:
        table.add_row(
            g.key,
            str(g.trades),
            percent(g.win_rate),
            money(g.net_pnl),
            duration_text(g.avg_duration_s),
        )
    return table


def monthly_table(report: Report) -> Table:
    table = Table(title="Monthly returns (UTC)", title_justify="left")
    table.add_column("month")
    table.add_column("return", justify="right")
    table.add_column("end equity", justify="right")
    for m in report.monthly:
        ret = m.return_pct
        table.add_row(m.month, "n/a" if ret is None else f"{ret:+.2f}%", money(m.end_equity))
    return table


def open_positions_table(report: Report) -> Table:
    table = Table(title="Open positions at the end", title_justify="left")
    for column in ("symbol", "side", "size", "entry", "opened (UTC)", "last price", "unrealized"):
        table.add_column(column, justify="left" if column in ("symbol", "side") else "right")
    for p in report.open_positions:
        table.add_row(
            p.symbol,
            p.side,
            f"{p.size:.8g}",
            f"{p.entry_price:.8g}",
            "" if p.open_ts is None else p.as_dict()["open_time"][:19].replace("T", " "),
            "n/a" if p.last_price is None else f"{p.last_price:.8g}",
            money(p.unrealized_pnl),
        )
    return table


def render_table(report: Report, console: Console) -> None:
    run = report.run
    summary = report.run_summary()
    console.print(
        Text.assemble(
            ("Run ", "bold"),
            (run.run_id, "bold cyan"),
            f"  {run.strategy} {params_text(summary['strategy_params'])}",
            f"  {run.kind} run, profile {run.profile}, {run.status}",
        )
    )
    if run.status != "completed":
        console.print(_status_line(run.status, run.detail), highlight=False)
    console.print(
        f"{summary['start'] or '?'} to {summary['end'] or '?'} ({report.days:.2f} days), "
        f"initial balance {run.initial_balance:,.2f}, final equity {report.final_equity:,.2f}"
    )
    if report.portfolios:
        console.print(portfolios_table(report))
    console.print(metrics_table(report))
    for w in report.warnings:
        console.print(Text(f"{WARN_MARK} {w.metric}: {w.reason}", style="yellow"))
    console.print(criteria_table(report))
    if report.trades:
        for by, groups in report.breakdowns.items():
            console.print(breakdown_table(by, groups))
    if report.monthly:
        console.print(monthly_table(report))
    if report.open_positions:
        console.print(open_positions_table(report))
    else:
        console.print("Open positions at the end: none")
    denials = report.metrics["denials"]
    if denials:
        table = Table(title="Risk denials", title_justify="left")
        table.add_column("reason code")
        table.add_column("count", justify="right")
        for code, count in sorted(denials.items()):
            table.add_row(code, str(count))
        console.print(table)
    else:
        console.print("Risk denials: none")
    passed = sum(c.passed for c in report.criteria)
    style = "bold green" if report.passed else "bold red"
    verdict = "PASSED" if report.passed else "FAILED"
    console.print(Text(f"{verdict}: {passed}/{len(report.criteria)} criteria passed", style=style))


def portfolios_table(report: Report) -> Table:
    """A run with several portfolios: each one's figures (`report --portfolio ID` for all
    of them); the tables below are the account's."""
    table = Table(title="Portfolios (the tables below are the whole account)", title_justify="left")
    for name, justify in (("id", "left"), ("strategy", "left"), ("symbols", "left"),
                          ("capital", "right"), ("equity", "right"), ("return", "right"),
                          ("trades", "right"), ("max drawdown", "right"),
                          ("validation", "right")):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for p in report.portfolios:
        m = p.metrics
        table.add_row(
            p.run.portfolio,
            p.run.strategy,
            ", ".join(p.run_summary()["symbols"]),
            f"{p.run.initial_balance:,.2f}",
            f"{p.final_equity:,.2f}",
            display_metric("return_pct", m["return_pct"]),
            str(m["trades"]),
            display_metric("max_drawdown", m["max_drawdown"]),
            f"{sum(c.passed for c in p.criteria)}/{len(p.criteria)}",
        )
    return table


_STATUS_MEANS = {
    "crashed": "its process died; the figures cover what was stored before that"
    " (a paper run continues with `perps-bot --resume RUN_ID`)",
    "running": "still running: the figures so far",
    "interrupted": "stopped before its end",
    "failed": "stopped by an error",
}


def _status_line(status: str, detail: str | None) -> Text:
    """One line saying a run did not complete, and what that means for its figures."""
    why = f" ({detail})" if detail else ""
    meaning = _STATUS_MEANS.get(status, "")
    return Text.assemble((f"Status: {status}", "bold red"), f"{why}: {meaning}")
