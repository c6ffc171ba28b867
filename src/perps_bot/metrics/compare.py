"""Runs side by side: the rows of `perps-bot runs list` and `perps-bot runs compare`.

Listing reads, per run, only its record, its fills (round trips are rebuilt to count
trades exactly as the report does) and the last equity snapshot, so a list of many
long runs stays quick. Comparing builds each run's full report and lines their
metrics and criteria up; run ids are the column names here, since telling runs
apart is the point.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from perps_bot.domain import DAY_MS, iso_utc
from perps_bot.metrics.formatting import display_metric, num, params_text
from perps_bot.metrics.html import asset, page_script, plotly_gzip_base64
from perps_bot.metrics.html_data import script_json
from perps_bot.metrics.report import Report, account_record, as_seen
from perps_bot.metrics.trades import round_trips_from_rows
from perps_bot.storage import RunRecord, RunStore


@dataclass(frozen=True, slots=True)
class RunRow:
    run: RunRecord
    trades: int
    return_pct: float | None

    @property
    def duration_s(self) -> float | None:
        start, end = self.run.start_ts, self.run.end_ts
        return None if start is None or end is None else (end - start) / 1000.0

    def as_dict(self) -> dict[str, Any]:
        run = self.run
        return {
            "run_id": run.run_id,
            "kind": run.kind,
            "profile": run.profile,
            "strategy": run.strategy,
            "start": None if run.start_ts is None else iso_utc(run.start_ts),
            "duration_s": num(self.duration_s),
            "trades": self.trades,
            "return_pct": num(self.return_pct),
            "status": run.status,
            "portfolio": run.portfolio,
            "parent_run_id": run.parent_run_id,
        }


def run_rows(
    store: RunStore,
    *,
    kind: str | None = None,
    profile: str | None = None,
    status: str | None = None,
    strategy: str | None = None,
    limit: int | None = None,
) -> tuple[list[RunRow], int]:
    """Matching runs, newest first (at most `limit`), and how many matched in all. The
    runs of the portfolios of a run with several follow it (they match with it)."""
    every = [as_seen(r) for r in store.runs()]  # as `report` shows them
    children: dict[str, list[RunRecord]] = {}
    for r in every:
        if r.parent_run_id is not None:
            children.setdefault(r.parent_run_id, []).append(r)
    runs = [
        r
        for r in reversed(every)
        if r.parent_run_id is None
        and (kind is None or r.kind == kind)
        and (profile is None or r.profile == profile)
        and (status is None or r.status == status)
        and (
            strategy is None
            or strategy in (r.strategy, *(c.strategy for c in children.get(r.run_id, ())))
        )
    ]
    rows = []
    for run in runs[:limit] if limit else runs:
        mine = children.get(run.run_id, [])
        parts = [_row(store, c) for c in mine]
        trades = sum(p.trades for p in parts) if mine else _trades(store, run.run_id)
        rows.append(_row(store, account_record(run, mine), trades))
        rows.extend(parts)
    return rows, len(runs)


def _trades(store: RunStore, run_id: str) -> int:
    return len(round_trips_from_rows(store.fill_rows(run_id)))  # a count: fills alone


def _row(store: RunStore, run: RunRecord, trades: int | None = None) -> RunRow:
    last = store.last_equity(run.run_id)
    ret = (
        (last - run.initial_balance) / run.initial_balance * 100.0
        if last is not None and run.initial_balance > 0
        else None
    )
    return RunRow(run, _trades(store, run.run_id) if trades is None else trades, ret)


COMPARE_HEADER = ("strategy", "params", "kind", "profile", "status", "start", "days")


def header_values(report: Report) -> dict[str, str]:
    s = report.run_summary()
    return {
        "strategy": report.run.strategy,
        "params": params_text(s["strategy_params"]),
        "kind": report.run.kind,
        "profile": report.run.profile,
        "status": report.run.status,
        "start": (s["start"] or "?")[:19].replace("T", " "),
        "days": f"{report.days:.2f}",
    }


def metric_cells(report: Report) -> dict[str, str]:
    """Each metric as shown, with '(!)' when computed from too little data."""
    warned = {w.metric for w in report.warnings}
    return {
        name: display_metric(name, value) + (" (!)" if name in warned else "")
        for name, value in report.metrics.items()
    }


def comparison_dict(reports: Sequence[Report]) -> dict[str, Any]:
    return {
        "runs": [
            {
                "run_id": r.run.run_id,
                "run": r.run_summary(),
                "metrics": r.metrics_dict(),
                "validation": {
                    "passed": r.passed,
                    "failed": [c.name for c in r.failed],
                },
                "warnings": [w.as_dict() for w in r.warnings],
            }
            for r in reports
        ]
    }


def comparison_rows(reports: Sequence[Report]) -> list[tuple[str, list[str]]]:
    """(row label, one cell per run): run facts, metrics, criteria, verdict."""
    rows: list[tuple[str, list[str]]] = []
    headers = [header_values(r) for r in reports]
    rows += [(key, [h[key] for h in headers]) for key in COMPARE_HEADER]
    cells = [metric_cells(r) for r in reports]
    rows += [(name, [c[name] for c in cells]) for name in reports[0].metrics]
    for i, criterion in enumerate(reports[0].criteria):
        rows.append(
            (
                f"criterion {criterion.name}",
                ["PASS" if r.criteria[i].passed else "FAIL" for r in reports],
            )
        )
    rows.append(("verdict", ["PASSED" if r.passed else "FAILED" for r in reports]))
    return rows


def render_compare_html(reports: Sequence[Report]) -> str:
    """One self-contained page: the comparison table and the runs' returns overlaid."""
    ids = [r.run.run_id for r in reports]
    head = "".join(f"<th>{escape(i)}</th>" for i in ids)
    body = "".join(
        f"<tr><td>{escape(label)}</td>"
        + "".join(f'<td class="n">{escape(v)}</td>' for v in values)
        + "</tr>"
        for label, values in comparison_rows(reports)
    )
    curves = []
    for r in reports:
        start = r.start_ts if r.start_ts is not None else 0
        initial = r.run.initial_balance
        curves.append(
            {
                "name": r.run.run_id,
                "days": [num((t - start) / DAY_MS) for t in r.chart.ts],
                "return_pct": [
                    num((c / initial - 1.0) * 100.0) if initial > 0 else None for c in r.chart.close
                ],
            }
        )
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            f"<title>perps-bot: {len(reports)} runs compared</title>",
            f"<style>{asset('report.css')}</style></head><body>\n",
            f"<h1>perps-bot: {len(reports)} runs compared</h1>\n",
            '<p class="note">(!) = computed from too little data (see each run\'s report).</p>',
            f'<div class="scroll"><table class="compare"><tr><th></th>{head}</tr>{body}'
            "</table></div>\n<h2>Return since start</h2>",
            '<div class="chart" id="compare-chart"></div>\n',
            '<script type="application/json" id="compare-data">',
            script_json({"curves": curves}),
            '</script>\n<script type="application/octet-stream" id="plotly-gz">',
            plotly_gzip_base64(),
            "</script>\n",
            page_script("compare.js"),
            "\n</body></html>\n",
        ]
    )
