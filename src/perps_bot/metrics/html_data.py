"""The data behind the HTML report's charts and trade table, as one JSON block.

Why JSON read by a script rather than markup: a run with 10,000 trades would be
megabytes of table rows; as columns of numbers the same trades are about 1 MB and
the page builds only the rows of the page shown. Numbers are rounded to 10
significant digits (display only: the CSV export and the JSON report keep 12) and
keys are sorted, so the block, like the page, depends only on the run.

Downsampling for display (the stored series are already bounded, see
`orchestrator.plot_sampler`):
- equity: the report's chart buckets (`equity.CHART_BUCKETS` time buckets, each
  with its close, lowest and highest equity and worst drawdown);
- price: up to `LINE_POINTS` samples are drawn as a line through every sample;
  above that, consecutive samples are grouped `k` at a time into at most
  `MAX_CANDLES` candles (open = first sample, high/low = extremes, close = last)
  and the indicators keep their value at each candle's close.
"""

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from perps_bot.domain import format_duration
from perps_bot.metrics.positions import buy_and_hold
from perps_bot.metrics.report import Report
from perps_bot.storage import PRICE, SymbolSeries

LINE_POINTS = 2_500
MAX_CANDLES = 1_000
_SIG = 10


def _r(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    rounded = float(f"{value:.{_SIG}g}")
    return 0.0 if rounded == 0 else rounded


def _col(values: Sequence[float] | np.ndarray) -> list[float | None]:
    return [_r(float(v)) for v in values]


def price_view(symbol: str, series: SymbolSeries) -> dict[str, Any]:
    """One symbol's price chart: a line of every sample, or candles of k samples."""
    ts = series.ts
    n = int(ts.size)
    step = int(np.median(np.diff(ts))) if n > 1 else 0
    every = f"sampled every {format_duration(step)}" if step > 0 else "sampled once"
    extra = {name: v for name, v in series.values.items() if name != PRICE}
    price = series.price
    if n <= LINE_POINTS:
        return {
            "symbol": symbol,
            "kind": "line",
            "title": f"{symbol}: last price {every} ({n} samples)",
            "ts": [int(t) for t in ts],
            "close": _col(price),
            "series": [{"name": k, "values": _col(v)} for k, v in extra.items()],
        }
    k = math.ceil(n / MAX_CANDLES)
    starts = np.arange(0, n, k)
    ends = np.minimum(starts + k, n) - 1
    return {
        "symbol": symbol,
        "kind": "candles",
        "title": f"{symbol}: last price {every} ({n} samples), {k} samples per candle",
        "ts": [int(t) for t in ts[ends]],
        "open": _col(price[starts]),
        "high": _col(np.maximum.reduceat(price, starts)),
        "low": _col(np.minimum.reduceat(price, starts)),
        "close": _col(price[ends]),
        "series": [{"name": name, "values": _col(v[ends])} for name, v in extra.items()],
    }


def trade_columns(report: Report) -> dict[str, Any]:
    trades = report.trades
    symbols = sorted({t.symbol for t in trades})
    reasons = sorted({t.exit_reason for t in trades})
    sides = ["long", "short"]
    sym_i = {s: i for i, s in enumerate(symbols)}
    reason_i = {r: i for i, r in enumerate(reasons)}
    cols: dict[str, list[Any]] = {
        "id": [t.trade_id for t in trades],
        "sym": [sym_i[t.symbol] for t in trades],
        "side": [sides.index(t.side) for t in trades],
        "open": [t.open_ts for t in trades],
        "close": [t.close_ts for t in trades],
        "reason": [reason_i[t.exit_reason] for t in trades],
    }
    for key, attr in (
        ("size", "size"),
        ("entry", "entry_price"),
        ("exit", "exit_price"),
        ("gross", "gross_pnl"),
        ("fees", "fees"),
        ("funding", "funding"),
        ("net", "net_pnl"),
        ("ret", "return_pct"),
        ("r", "r_multiple"),
        ("mae", "mae"),
        ("mfe", "mfe"),
    ):
        cols[key] = [_r(getattr(t, attr)) for t in trades]
    return {"symbols": symbols, "sides": sides, "reasons": reasons, "cols": cols}


def chart_data(report: Report) -> dict[str, Any]:
    chart = report.chart
    bench_ts, bench = buy_and_hold(report.prices, report.run.initial_balance)
    n = len(report.prices)
    label = "buy and hold" + (f" (equal weights, {n} symbols)" if n > 1 else "")
    return {
        "equity": {
            "ts": chart.ts,
            "close": _col(chart.close),
            "low": _col(chart.low),
            "high": _col(chart.high),
            "drawdown_pct": _col([-100.0 * d for d in chart.drawdown]),
        },
        "benchmark": {"ts": bench_ts, "equity": _col(bench), "label": label},
        "portfolios": [
            {
                "id": p.run.portfolio,
                "prices": [price_view(s, v) for s, v in sorted(p.prices.items())],
                "trades": trade_columns(p),
            }
            for p in report.portfolios or (report,)
        ],
    }


def script_json(data: dict[str, Any]) -> str:
    """Compact, sorted JSON safe inside a <script> element ('<' only occurs in strings)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c")
