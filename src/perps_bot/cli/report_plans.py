"""The plan history of `perps-bot report` (SPEC 16): a short table in the console, a
section of the HTML page, `plans` in the JSON (metrics.plans reads it)."""

from html import escape
from typing import Any

from rich.console import Console
from rich.table import Table

from perps_bot.metrics import Report
from perps_bot.metrics.plans import plans_section, trigger_text
from perps_bot.storage import RunStore

TITLE = "Plan history"


def plans_extra(store: RunStore, report: Report) -> dict[str, Any]:
    """`{"plans": ...}` for the report's extra sections, or nothing when none was made."""
    runs = [p.run for p in report.portfolios] or [report.run]
    section = plans_section(store, runs)
    return {} if section is None else {"plans": section}


def _rows(section: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    several = len({p["portfolio"] for p in section["llm"]}) > 1
    header = ["time", *(["portfolio"] if several else []), "rationale", "triggers"]
    rows = [
        [p["time"], *([p["portfolio"] or ""] if several else []), p["rationale"],
         "\n".join(trigger_text(t) for t in p["triggers"]) or "(none)"]
        for p in section["llm"]
    ]  # fmt: skip
    return header, rows


def _rows_line(section: dict[str, Any]) -> str | None:
    keys = section["executed_rows"]
    return f"plan rows executed ({len(keys)}): {', '.join(keys)}" if keys else None


def render_plans(section: dict[str, Any], console: Console) -> None:
    header, rows = _rows(section)
    if rows:
        table = Table(title=f"{TITLE} ({len(rows)} plans)")
        for name in header:
            table.add_column(name, no_wrap=name == "time", overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    line = _rows_line(section)
    if line is not None:
        console.print(line, highlight=False, soft_wrap=True)


def plans_html(section: dict[str, Any]) -> str:
    header, rows = _rows(section)
    parts = [f"<h2>{TITLE}</h2>\n"]
    if rows:
        head = "".join(f"<th>{escape(h)}</th>" for h in header)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(c).replace(chr(10), '<br>')}</td>" for c in row)
            + "</tr>" for row in rows
        )  # fmt: skip
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n")
    line = _rows_line(section)
    if line is not None:
        parts.append(f"<p>{escape(line)}</p>\n")
    return "".join(parts)
