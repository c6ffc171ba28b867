"""A walk-forward run's evidence (SPEC 13): each window's in-sample metrics (stored by
`perps-bot walkforward`) next to its out-of-sample ones (computed here from the run's
own trades opened in the window's test range and its equity until they closed), and
the deflated Sharpe ratio of the stitched out-of-sample run for every trial the
optimiser tried.

Its `days` of evidence are the days its test windows cover, and its DSR comes from
the returns of its test windows: with a `--step` longer than `--test` the run is flat
between windows, and those days tested nothing. Its `days` and `sharpe` criteria (what
promotion gates) are those of the test windows too; the report's `days` and `sharpe`
metrics still cover the run's span.

Also the criteria that promotion to canary may ask for (`promotion.require_walkforward`,
`promotion.min_dsr`): they are criteria of promotion to canary only (a live canary run
going to prod is out-of-sample by nature), checked against the run's own config and
the canary profile's gate.
"""

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from perps_bot.config import PromotionConfig
from perps_bot.domain import DAY_MS, YEAR_MS, iso_utc, parse_duration
from perps_bot.metrics.criteria import Criterion, judged_on
from perps_bot.metrics.dsr import deflated_sharpe, sample_variance
from perps_bot.metrics.equity import EquityAccumulator, Moments
from perps_bot.metrics.formatting import num
from perps_bot.metrics.report import Report
from perps_bot.metrics.stats import equity_metrics, sharpe_ratio, trade_metrics
from perps_bot.metrics.warnings import MIN_RETURNS, MetricWarning, data_warnings, dsr_warning
from perps_bot.storage import RunStore
from perps_bot.storage.walkforward import WindowRecord, load_windows

SHOWN = ("trades", "return_pct", "sharpe", "max_drawdown", "total_pnl", "win_rate")
CANARY_KINDS = ("dev", "backtest", "walkforward")


def window_metrics(
    store: RunStore, report: Report, start: int, end: int, since: int | None = None
) -> tuple[dict[str, Any], list[MetricWarning], int]:
    """The run's metrics of the test window (start, end]: the trades opened in it, and
    the equity from the window's start (the last equity at or before it, the initial
    balance before the first row) until its last trade closed (returned: `settled`).
    A window's last position is closed at the open after its end (the walkforward
    strategy), so that close belongs to this window's parameters, not to the next
    window, which starts from the equity after it: `since`, the window before's
    `settled` (its exit's fee and slippage were counted in both windows). With them,
    the warnings on the metrics computed from too little data (SPEC 15), as for the
    run's own."""
    period = parse_duration(report.promotion.sharpe_period)
    trades = [t for t in report.trades if start < t.open_ts <= end]
    settled = max([end, *(t.close_ts for t in trades)])
    begin = start if since is None else max(start, since)
    acc = EquityAccumulator(period)
    initial = report.run.initial_balance
    opened = False
    for part in store.iter_equity(report.run.run_id):
        before = part.ts <= begin
        if np.any(before):
            initial = float(part.equity[before][-1])
        mask = (part.ts > begin) & (part.ts <= settled)
        if not np.any(mask):
            continue
        if not opened:  # the window's opening equity, at its start (after `since`)
            acc.add(np.asarray([start], dtype=np.int64), np.asarray([initial]))
            opened = True
        acc.add(part.ts[mask], part.equity[mask])
    stats = acc.finish()
    values = trade_metrics(trades)
    values.update(equity_metrics(stats, initial, settled - start, period))
    shown = {name: num(values[name]) if isinstance(values[name], float) else values[name]
             for name in SHOWN}  # fmt: skip
    warned = data_warnings(
        shown,
        returns=stats.returns.n,
        days=(settled - start) / DAY_MS,
        sharpe_period=report.promotion.sharpe_period,
    )
    return shown, warned, settled


def tested_returns(store: RunStore, report: Report, spans: Sequence[tuple[int, int]]) -> Moments:
    """The returns of the test windows' equity alone: each window's (begin, settled]
    (window_metrics) sampled as one curve, the time between windows cut out. With a
    `--step` longer than `--test` the run is flat between windows, and each day between
    was a return of 0 in the run's own returns (a mean and spread of days that tested
    nothing); contiguous windows have the run's own returns."""
    cuts, cut = [], 0  # the time between windows cut out before each
    for k, (begin, _) in enumerate(spans):
        cut += max(begin - spans[k - 1][1], 0) if k else 0
        cuts.append(cut)
    if not cut:
        return report.equity.returns
    first = spans[0][0]
    acc = EquityAccumulator(parse_duration(report.promotion.sharpe_period))
    opening, opened = report.run.initial_balance, False
    for part in store.iter_equity(report.run.run_id):
        before = part.ts <= first
        if np.any(before):
            opening = float(part.equity[before][-1])
        for (begin, settled), shift in zip(spans, cuts, strict=True):
            mask = (part.ts > begin) & (part.ts <= settled)
            if not np.any(mask):
                continue
            if not opened:  # the opening equity, at the first window's start
                acc.add(np.asarray([first], dtype=np.int64), np.asarray([opening]))
                opened = True
            acc.add(part.ts[mask] - shift, part.equity[mask])
    return acc.finish().returns


def dsr_of(report: Report, windows: Sequence[WindowRecord], returns: Moments) -> dict[str, Any]:
    """DSR of the out-of-sample run's test-window `returns` (tested_returns) given every
    trial of every window (pruned ones too, `tried_in`), and why it is flagged
    (`dsr_warning`: from fewer than 30 returns, SPEC 15) or None."""
    sharpes = [s for w in windows for s in w.sharpes]
    trials = sum(tried_in(w) for w in windows)
    variance = sample_variance(sharpes)
    std, skew, kurt = returns.sample_std, returns.skew, returns.kurtosis
    value = None
    if sharpes and std and skew is not None and kurt is not None:
        value = deflated_sharpe(returns.mean / std, returns.n, skew, kurt, trials, variance)
    warning = None if value is None else dsr_warning(returns.n, report.promotion.sharpe_period)
    return {"dsr": num(value), "trials": trials, "sharpe_variance": num(variance),
            "dsr_warning": warning}  # fmt: skip


def tried_in(window: WindowRecord) -> int:
    """The trials a window's study tried (completed and pruned: `research.study.tried`,
    kept with its in-sample metrics); its completed ones' Sharpe ratios for a window
    stored before the count was kept."""
    count = window.in_sample.get("tried")
    return max(count, len(window.sharpes)) if isinstance(count, int) else len(window.sharpes)


def walkforward_section(
    store: RunStore, report: Report, windows: Sequence[WindowRecord] | None = None
) -> dict[str, Any] | None:
    """What the report shows of a walk-forward run; None for any other run."""
    if windows is None:
        windows = load_windows(store.connection, report.run.run_id)
    return _section(store, report, windows)[0] if windows else None


def _section(
    store: RunStore, report: Report, windows: Sequence[WindowRecord]
) -> tuple[dict[str, Any], Moments]:
    """The walk-forward section of `windows` (not empty) and their test windows' returns."""
    rows = []
    spans: list[tuple[int, int]] = []  # each window's (begin, settled] of equity
    settled: int | None = None  # when the window before's last trade closed
    for w in windows:
        begin = w.test_start if settled is None else max(w.test_start, settled)
        out_of_sample, warned, settled = window_metrics(
            store, report, w.test_start, w.test_end, settled
        )
        spans.append((begin, settled))
        in_sample = {k: w.in_sample.get(k) for k in SHOWN}
        returns = w.in_sample.get("returns")  # absent from runs stored before it was kept
        in_warned = data_warnings(
            in_sample,
            returns=returns if isinstance(returns, int) else MIN_RETURNS,
            days=(w.train_end - w.train_start) / DAY_MS,
            sharpe_period=report.promotion.sharpe_period,
        )
        rows.append(
            {
                "window": w.window,
                "train": [iso_utc(w.train_start), iso_utc(w.train_end)],
                "test": [iso_utc(w.test_start), iso_utc(w.test_end)],
                "params": w.params,
                "trials": tried_in(w),
                "in_sample": in_sample,
                "in_sample_warnings": [x.as_dict() for x in in_warned],
                "out_of_sample": out_of_sample,
                "out_of_sample_warnings": [x.as_dict() for x in warned],
            }
        )
    returns = tested_returns(store, report, spans)
    return {"windows": rows, **dsr_of(report, windows, returns)}, returns


def evidence_criteria(
    report: Report, section: dict[str, Any] | None, gate: PromotionConfig | None = None
) -> list[Criterion]:
    """`walkforward` and `dsr` criteria when the run's config or the gate asks for them."""
    own = report.promotion
    require = own.require_walkforward or (gate is not None and gate.require_walkforward)
    bounds = [b for b in (own.min_dsr, None if gate is None else gate.min_dsr) if b is not None]
    out = []
    if require:
        value = 1.0 if report.run.kind == "walkforward" else 0.0
        out.append(Criterion("walkforward", ">=", 1.0, value, value >= 1.0))
    if bounds:
        dsr = None if section is None else section["dsr"]
        bound = max(bounds)
        out.append(Criterion("dsr", ">=", bound, dsr, dsr is not None and dsr >= bound))
    return out


def with_evidence(
    store: RunStore, report: Report, gate: PromotionConfig | None = None
) -> tuple[Report, dict[str, Any] | None]:
    """The report with the evidence criteria added (runs that may go to canary), and
    the walk-forward section (None for other runs)."""
    windows = load_windows(store.connection, report.run.run_id)
    section = None
    if windows:
        section, returns = _section(store, report, windows)
        report = _tested(report, windows, returns)
    if report.run.kind not in CANARY_KINDS:
        return report, section
    extra = evidence_criteria(report, section, gate)
    if not extra:
        return report, section
    return dataclasses.replace(report, criteria=[*report.criteria, *extra]), section


def _tested(report: Report, windows: Sequence[WindowRecord], returns: Moments) -> Report:
    """The report whose `days` criterion counts the days the test windows cover, and
    whose `sharpe` criterion comes from the test windows' `returns` (tested_returns),
    not from the flat days between them, which tested nothing."""
    tested = sum(w.test_end - w.test_start for w in windows) / DAY_MS
    periods = YEAR_MS / parse_duration(report.promotion.sharpe_period)
    criteria = []
    for c in report.criteria:
        if c.name == "days" and c.value is not None and tested < c.value:
            c = judged_on(c, tested)
        elif c.name == "sharpe":
            c = judged_on(c, sharpe_ratio(returns, periods))
        criteria.append(c)
    return dataclasses.replace(report, criteria=criteria)
