"""Build a run's report from the store: trades, metrics, criteria and chart series.

One pass over the equity rows (streamed), one read of fills, funding,
excursions and denials. The report body carries no run id, database path or
wall-clock time, and floats go through `formatting.num`, so the same run
content always renders to the same bytes.
"""

import json
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from perps_bot.config import PromotionConfig
from perps_bot.domain import DEFAULT_PORTFOLIO, iso_utc, parse_duration
from perps_bot.metrics.breakdowns import Group, MonthlyReturns, MonthReturn, breakdowns
from perps_bot.metrics.criteria import Criterion, evaluate_criteria, promotion_config
from perps_bot.metrics.equity import ChartSeries, EquityAccumulator, EquityStats
from perps_bot.metrics.formatting import ReportError, display_metric, num
from perps_bot.metrics.positions import OpenPosition, open_positions
from perps_bot.metrics.stats import DAY_MS, all_metrics
from perps_bot.metrics.trades import RoundTripBuilder, Trade, round_trips
from perps_bot.metrics.warnings import MetricWarning, data_warnings
from perps_bot.storage import RunRecord, RunStore, SymbolSeries
from perps_bot.storage.durable import process_gone


@dataclass(frozen=True)
class Report:
    run: RunRecord
    promotion: PromotionConfig
    start_ts: int | None
    end_ts: int | None
    days: float
    final_equity: float
    equity: EquityStats
    metrics: dict[str, Any]
    criteria: list[Criterion]
    trades: list[Trade]
    chart: ChartSeries
    warnings: list[MetricWarning]
    monthly: list[MonthReturn]
    open_positions: list[OpenPosition]
    prices: dict[str, SymbolSeries]

    @cached_property
    def breakdowns(self) -> dict[str, list[Group]]:
        """Computed when first shown (the end-of-run headline does not need them)."""
        return breakdowns(self.trades)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.criteria)

    @property
    def failed(self) -> list[Criterion]:
        return [c for c in self.criteria if not c.passed]

    def run_summary(self) -> dict[str, Any]:
        """What the run was, without its id, path or wall-clock creation time."""
        run = self.run
        return {
            "kind": run.kind,
            "profile": run.profile,
            "status": run.status,
            "strategy": run.strategy,
            "strategy_params": _json_or_text(run.strategy_params),
            "strategy_fingerprint": run.strategy_fingerprint,
            "code_version": run.code_version,
            "config_hash": run.config_hash,
            "seed": run.seed,
            "symbols": _json_or_text(run.symbols),
            "start": None if self.start_ts is None else iso_utc(self.start_ts),
            "end": None if self.end_ts is None else iso_utc(self.end_ts),
            "days": num(self.days),
            "initial_balance": num(run.initial_balance),
            "final_equity": num(self.final_equity),
            "equity_rows": self.equity.rows,
            "status_detail": None if run.status == "completed" else run.detail,
            "error_lines": run.error_lines,
            "warning_lines": run.warning_lines,
            "sharpe_period": self.promotion.sharpe_period,
        }

    def metrics_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in self.metrics.items():
            out[name] = num(value) if isinstance(value, float) else value
        return out

    def validation_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "passed_count": sum(c.passed for c in self.criteria),
            "total": len(self.criteria),
            "criteria": [c.as_dict() for c in self.criteria],
        }

    def portfolio_dict(self) -> dict[str, Any]:
        """The one portfolio of today's runs; a run with several (SPEC 10) lists one
        entry each, and the top-level metrics and validation become the account's."""
        summary = self.run_summary()
        return {
            "id": DEFAULT_PORTFOLIO,
            "strategy": summary["strategy"],
            "strategy_params": summary["strategy_params"],
            "symbols": summary["symbols"],
            "metrics": self.metrics_dict(),
            "validation": self.validation_dict(),
            "warnings": [w.as_dict() for w in self.warnings],
            "breakdowns": {
                by: [g.as_dict() for g in groups] for by, groups in self.breakdowns.items()
            },
            "open_positions": [p.as_dict() for p in self.open_positions],
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run_summary(),
            "metrics": self.metrics_dict(),
            "validation": self.validation_dict(),
            "warnings": [w.as_dict() for w in self.warnings],
            "monthly_returns": [m.as_dict() for m in self.monthly],
            "portfolios": [self.portfolio_dict()],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True, indent=2, allow_nan=False) + "\n"


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text


def build_report(store: RunStore, run_id: str = "latest", *, chunk: int = 50_000) -> Report:
    """The full report of one run ('latest' = most recently created). Rows a writing
    store still buffers are flushed first, so a report at the end of a run sees them."""
    store.flush()
    run = store.run(run_id)
    if run.status == "running" and process_gone(run.pid, run.host):
        # a reader never writes: the next bot on this database records the crash
        gone = f"process {run.pid} on {run.host} is gone (recorded by the next bot)"
        run = replace(run, status="crashed", detail=gone)
    config = promotion_config(run.config_json)
    try:
        period_ms = parse_duration(config.sharpe_period)
    except ValueError as exc:
        raise ReportError(f"stored run config promotion.sharpe_period: {exc}") from exc

    lo, hi, _ = store.equity_span(run.run_id)
    acc = EquityAccumulator(period_ms, chart_start=lo, chart_end=hi)
    months = MonthlyReturns()
    for part in store.iter_equity(run.run_id, chunk=chunk):
        acc.add(part.ts, part.equity)
        months.add(part.ts, part.equity)
    equity = acc.finish()

    fills = store.fills(run.run_id)
    builder = RoundTripBuilder()
    trades = round_trips(
        fills, store.funding(run.run_id), store.excursions(run.run_id), builder=builder
    )
    start = run.start_ts if run.start_ts is not None else equity.first_ts
    end = run.end_ts if run.end_ts is not None else equity.last_ts
    duration_ms = max(end - start, 0) if start is not None and end is not None else 0
    metrics = all_metrics(
        trades,
        equity,
        initial_balance=run.initial_balance,
        duration_ms=duration_ms,
        sharpe_period_ms=period_ms,
        liquidations=sum(1 for f in fills if f.is_liquidation),
        denials=store.denial_counts(run.run_id),
    )
    days = duration_ms / DAY_MS
    prices = store.plot_series(run.run_id)
    return Report(
        run=run,
        promotion=config,
        start_ts=start,
        end_ts=end,
        days=days,
        final_equity=equity.last_equity if equity.last_equity is not None else run.initial_balance,
        equity=equity,
        metrics=metrics,
        criteria=evaluate_criteria(metrics, days=days, error_lines=run.error_lines, config=config),
        trades=trades,
        chart=acc.chart(),
        warnings=data_warnings(
            metrics, returns=equity.returns.n, days=days, sharpe_period=config.sharpe_period
        ),
        monthly=months.finish(run.initial_balance),
        open_positions=open_positions(store.positions(run.run_id), builder.open, prices),
        prices=prices,
    )


def headline_text(report: Report) -> str:
    """A short multi-line summary for the end of a run."""
    m = report.metrics
    warned = {w.metric: w.reason for w in report.warnings}

    def shown(name: str) -> str:
        return display_metric(name, m[name]) + (" (!)" if name in warned else "")

    passed = sum(c.passed for c in report.criteria)
    failed = ", ".join(c.name for c in report.failed) or "none"
    lines = [
        f"trades {m['trades']}  win rate {shown('win_rate')}  total PnL {shown('total_pnl')}",
        f"return {shown('return_pct')}  sharpe {shown('sharpe')}"
        f"  max drawdown {shown('max_drawdown')}",
        f"validation {passed}/{len(report.criteria)} criteria passed (failed: {failed})",
    ]
    thin = [f"{name} {warned[name]}" for name in ("win_rate", "sharpe") if name in warned]
    if thin:
        lines.append("(!) too little data: " + "; ".join(thin))
    return "\n".join(lines)


def headline(store: RunStore, run_id: str) -> str:
    """Summary printed when a run ends (the orchestrator's run path calls this)."""
    return headline_text(build_report(store, run_id))
