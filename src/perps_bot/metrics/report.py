"""Build a run's report from the store: trades, metrics, criteria and chart series.

One pass over the equity rows (streamed), one read of fills, funding,
excursions and denials. The report body carries no run id, database path or
wall-clock time, and floats go through `formatting.num`, so the same run
content always renders to the same bytes.
"""

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from perps_bot.config import PromotionConfig
from perps_bot.domain import DAY_MS, iso_utc, parse_duration
from perps_bot.metrics.breakdowns import Group, MonthlyReturns, MonthReturn, breakdowns
from perps_bot.metrics.criteria import Criterion, evaluate_criteria, promotion_config
from perps_bot.metrics.equity import ChartSeries, EquityAccumulator, EquityStats
from perps_bot.metrics.formatting import ReportError, denials_text, display_metric, num
from perps_bot.metrics.positions import OpenPosition, open_positions
from perps_bot.metrics.stats import all_metrics
from perps_bot.metrics.trade_records import Trade
from perps_bot.metrics.trades import RoundTripBuilder, stored_trades
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
    #: a run with several portfolios: the report of each (this one is the account's)
    portfolios: tuple["Report", ...] = ()

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
        """This run as one portfolio: its metrics, validation and positions."""
        summary = self.run_summary()
        return {
            "id": self.run.portfolio,
            "strategy": summary["strategy"],
            "strategy_params": summary["strategy_params"],
            "strategy_fingerprint": summary["strategy_fingerprint"],
            "symbols": summary["symbols"],
            "initial_balance": summary["initial_balance"],
            "final_equity": summary["final_equity"],
            "metrics": self.metrics_dict(),
            "validation": self.validation_dict(),
            "warnings": [w.as_dict() for w in self.warnings],
            "breakdowns": {
                by: [g.as_dict() for g in groups] for by, groups in self.breakdowns.items()
            },
            "open_positions": [p.as_dict() for p in self.open_positions],
        }

    def account_dict(self) -> dict[str, Any]:
        """The whole account: with several portfolios, the sum of their books (its equity
        curve, every trade); with one, that portfolio."""
        return {
            "initial_balance": num(self.run.initial_balance),
            "final_equity": num(self.final_equity),
            "portfolios": [p.run.portfolio for p in self.portfolios] or [self.run.portfolio],
            "metrics": self.metrics_dict(),
            "validation": self.validation_dict(),
        }

    def as_dict(self) -> dict[str, Any]:
        """The top-level metrics and validation are the account's (SPEC 10)."""
        portfolios = self.portfolios or (self,)
        return {
            "run": self.run_summary(),
            "metrics": self.metrics_dict(),
            "validation": self.validation_dict(),
            "warnings": [w.as_dict() for w in self.warnings],
            "monthly_returns": [m.as_dict() for m in self.monthly],
            "account": self.account_dict(),
            "portfolios": [p.portfolio_dict() for p in portfolios],
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
    store still buffers are flushed first, so a report at the end of a run sees them.
    A run with several portfolios (SPEC 10) is the account: its own equity curve, the
    trades of all its portfolios, and a report of each portfolio in `portfolios`."""
    store.flush()
    run = as_seen(store.run(run_id))
    run = account_record(run, kids := store.children(run.run_id))
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

    children = tuple(build_report(store, c.run_id, chunk=chunk) for c in kids)
    content = _account_content(children) if children else _run_content(store, run.run_id)
    trades, liquidations, denials, positions, prices = content
    start = run.start_ts if run.start_ts is not None else equity.first_ts
    end = run.end_ts if run.end_ts is not None else equity.last_ts
    duration_ms = max(end - start, 0) if start is not None and end is not None else 0
    metrics = all_metrics(
        trades,
        equity,
        initial_balance=run.initial_balance,
        duration_ms=duration_ms,
        sharpe_period_ms=period_ms,
        liquidations=liquidations,
        denials=denials,
    )
    days = duration_ms / DAY_MS
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
        open_positions=positions,
        prices=prices,
        portfolios=children,
    )


_Content = tuple[list[Trade], int, dict[str, int], list[OpenPosition], dict[str, SymbolSeries]]


def account_record(run: RunRecord, children: Sequence[RunRecord]) -> RunRecord:
    """The account's run of several portfolios holds what they hold: its equity curve is
    the sum of their books, so its initial balance is the sum of their capital (which
    may be less than `account.initial_balance`, the figure a paper run was created with;
    a live run stores the sum already)."""
    if not children:
        return run
    return replace(run, initial_balance=sum(c.initial_balance for c in children))


def as_seen(run: RunRecord) -> RunRecord:
    """A run left `running` by a process that is gone reads as crashed."""
    if run.status == "running" and process_gone(run.pid, run.host):
        # a reader never writes: the next bot on this database records the crash
        gone = f"process {run.pid} on {run.host} is gone (recorded by the next bot)"
        return replace(run, status="crashed", detail=gone)
    return run


def _run_content(store: RunStore, run_id: str) -> _Content:
    """Trades, liquidations, denials, open positions and prices of one portfolio's run."""
    builder = RoundTripBuilder()
    trades = stored_trades(store, run_id, builder)
    prices = store.plot_series(run_id)
    return (
        trades,
        store.liquidation_count(run_id),
        store.denial_counts(run_id),
        open_positions(store.positions(run_id), builder.open, prices),
        prices,
    )


def _account_content(children: Sequence[Report]) -> _Content:
    """The account's content: every portfolio's trades (numbered again in the order they
    closed, each with its portfolio), liquidations, denials, positions and prices."""
    tagged = [
        (t.close_ts, t.open_ts, index, replace(t, portfolio=child.run.portfolio))
        for index, child in enumerate(children)
        for t in child.trades
    ]
    tagged.sort(key=lambda row: row[:3])
    trades = [replace(row[3], trade_id=i) for i, row in enumerate(tagged, start=1)]
    denials: Counter[str] = Counter()
    prices: dict[str, SymbolSeries] = {}
    for child in children:
        denials.update(child.metrics["denials"])
        for symbol, series in child.prices.items():
            prices.setdefault(symbol, series)
    return (
        trades,
        sum(int(child.metrics["liquidations"]) for child in children),
        dict(sorted(denials.items())),
        [p for child in children for p in child.open_positions],
        prices,
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
    denials: dict[str, int] = m["denials"]
    if denials:  # orders the strategy wanted and never sent: why it traded less
        lines.insert(1, f"denied {sum(denials.values())} orders: {denials_text(denials)}")
    thin = [f"{name} {warned[name]}" for name in ("win_rate", "sharpe") if name in warned]
    if thin:
        lines.append("(!) too little data: " + "; ".join(thin))
    for p in report.portfolios:
        pm = p.metrics
        lines.append(
            f"  {p.run.portfolio} ({p.run.strategy}): trades {pm['trades']}"
            f"  return {display_metric('return_pct', pm['return_pct'])}"
            f"  equity {p.final_equity:,.2f}"
            f"  validation {sum(c.passed for c in p.criteria)}/{len(p.criteria)}"
        )
    return "\n".join(lines)


def headline(store: RunStore, run_id: str) -> str:
    """Summary printed when a run ends (the orchestrator's run path calls this)."""
    return headline_text(build_report(store, run_id))
