"""How far paper sits from what the exchange did (SPEC 14): a live run against the replay
of its own capture.

Definitions (README "Drift report"):
- **Orders** compared are the decisions of each run: an order the live run found resting
  on the exchange (created before the run, by its earlier run) is none, and its replay
  cannot make it; its fills stay in the live fees, PnL and equity.
- **Pairing.** Orders are paired per (symbol, side, type) in creation order: a live
  order takes the unpaired paper order created nearest to it, at most `window_ms`
  apart. The replay's strategy sees the same events at the same times, so agreeing
  decisions have (nearly) the same creation time.
- **Signal agreement** = paired / (live orders + paper orders - paired): 1 when both
  made exactly the same decisions.
- **Fill rate** = executed quantity / ordered quantity, per run.
- **Slippage** of an order with fills, in bps against its arrival mid (the mid of
  the last captured book of the symbol at or before the order's creation), positive
  = cost: side * (average fill price - mid) / mid * 1e4. The drift of a pair is
  paper - live; the headline is the median of |paper - live| over pairs that both
  filled.
- **Fees** and **funding**: sums of each run's fills' fees and funding payments; each
  paired order also shows its own fills' fees.
- **PnL tracking error** = RMS over the live equity snapshots of (live equity - paper
  equity at or before the same time) / initial balance.
- **Latency**: the live orders' measured round trips (request sent to the venue's
  answer, from the capture); the paper side's is the replay's latency model.
- **Portfolios** (SPEC 10): a run with several is compared portfolio by portfolio (the
  live run of each against the replay's run of the same portfolio): a drift is a
  strategy's, as a promotion is. The capture, the replay and the latencies are shared.
"""

import bisect
import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from perps_bot.domain import BookSnapshot, MarketEvent
from perps_bot.storage import FillRecord, RunStore
from perps_bot.storage.records import OrderRecord

PAIR_WINDOW_MS = 1_000


@dataclass(frozen=True, slots=True)
class OrderFacts(OrderRecord):
    """One stored order, its slippage against its arrival mid (None: no fill, or no
    book before it) and the fees of its fills."""

    slippage_bps: float | None = None
    fee: float = 0.0

    @property
    def key(self) -> tuple[str, str, str]:
        return self.symbol, self.side, self.order_type


@dataclass(frozen=True, slots=True)
class Pair:
    live: OrderFacts | None
    paper: OrderFacts | None

    @property
    def slippage_drift_bps(self) -> float | None:
        if self.live is None or self.paper is None:
            return None
        if self.live.slippage_bps is None or self.paper.slippage_bps is None:
            return None
        return self.paper.slippage_bps - self.live.slippage_bps


@dataclass(slots=True)
class Drift:
    """The comparison of one live run and one replay of it."""

    live_run: str
    replay_run: str
    fill_model: dict[str, Any]
    pairs: list[Pair]
    summary: dict[str, Any]
    live_curve: tuple[list[int], list[float]] = field(default_factory=lambda: ([], []))
    paper_curve: tuple[list[int], list[float]] = field(default_factory=lambda: ([], []))

    def as_json(self) -> dict[str, Any]:
        def facts(o: OrderFacts | None) -> dict[str, Any] | None:
            if o is None:
                return None
            return {"client_id": o.client_id, "symbol": o.symbol, "side": o.side,
                    "type": o.order_type, "size": o.size, "filled": o.filled,
                    "avg_price": _r(o.avg_price), "created": o.created, "status": o.status,
                    "slippage_bps": _r(o.slippage_bps), "fee": _r(o.fee)}  # fmt: skip

        return {
            "live_run": self.live_run,
            "replay_run": self.replay_run,
            "fill_model": self.fill_model,
            "summary": {k: _r(v) if isinstance(v, float) else v for k, v in self.summary.items()},
            "pairs": [
                {
                    "live": facts(p.live),
                    "paper": facts(p.paper),
                    "slippage_drift_bps": _r(p.slippage_drift_bps),
                }
                for p in self.pairs
            ],
        }


def _r(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(f"{value:.12g}")


class ArrivalMids:
    """Mid of the last captured book per symbol at or before a time."""

    def __init__(self, events: Iterable[MarketEvent]) -> None:
        """`events` are read once: a capture's can be streamed (ReplayFeed.iter_events)."""
        self._ts: dict[str, list[int]] = {}
        self._mid: dict[str, list[float]] = {}
        for event in events:
            if type(event) is BookSnapshot and event.bids and event.asks:
                self._ts.setdefault(event.symbol, []).append(event.ts)
                mid = (event.bids[0][0] + event.asks[0][0]) / 2.0
                self._mid.setdefault(event.symbol, []).append(mid)

    def at(self, symbol: str, ts: int) -> float | None:
        times = self._ts.get(symbol)
        if not times:
            return None
        i = bisect.bisect_right(times, ts) - 1
        return self._mid[symbol][i] if i >= 0 else None


def order_facts(
    orders: Sequence[OrderRecord], mids: ArrivalMids, fees: Mapping[str, float] | None = None
) -> list[OrderFacts]:
    """The orders with their slippage and (from `fees`, by client id) their fills' fees."""
    out = []
    for o in orders:
        mid = mids.at(o.symbol, o.created)
        slip = None
        if o.filled > 0 and mid:
            sign = 1.0 if o.side == "buy" else -1.0
            slip = sign * (o.avg_price - mid) / mid * 1e4
        fee = (fees or {}).get(o.client_id, 0.0)
        known = {f.name: getattr(o, f.name) for f in fields(o)}
        out.append(OrderFacts(**known, slippage_bps=slip, fee=fee))
    return out


def fees_by_order(fills: Sequence[FillRecord]) -> dict[str, float]:
    """Sum of the fills' fees per client order id."""
    out: dict[str, float] = {}
    for f in fills:
        out[f.client_id] = out.get(f.client_id, 0.0) + f.fee
    return out


def pair_orders(
    live: Sequence[OrderFacts], paper: Sequence[OrderFacts], window_ms: int = PAIR_WINDOW_MS
) -> list[Pair]:
    """Greedy pairing in creation order (module docstring), then the unpaired of both."""
    free = sorted(paper, key=lambda o: o.created)
    used: set[str] = set()
    pairs: list[Pair] = []
    for order in sorted(live, key=lambda o: o.created):
        best: OrderFacts | None = None
        for candidate in free:
            if candidate.client_id in used or candidate.key != order.key:
                continue
            gap = abs(candidate.created - order.created)
            if gap <= window_ms and (best is None or gap < abs(best.created - order.created)):
                best = candidate
        if best is not None:
            used.add(best.client_id)
        pairs.append(Pair(order, best))
    pairs.extend(Pair(None, o) for o in free if o.client_id not in used)
    pairs.sort(key=lambda p: (p.live or p.paper).created)  # type: ignore[union-attr]
    return pairs


def fill_rate(orders: Sequence[OrderFacts]) -> float | None:
    ordered = sum(o.size for o in orders)
    return sum(o.filled for o in orders) / ordered if ordered > 0 else None


def equity_curve(store: RunStore, run_id: str) -> tuple[list[int], list[float]]:
    ts: list[int] = []
    equity: list[float] = []
    for chunk in store.iter_equity(run_id):
        ts.extend(int(t) for t in chunk.ts)
        equity.extend(float(e) for e in chunk.equity)
    return ts, equity


def tracking_error(
    live: tuple[list[int], list[float]],
    paper: tuple[list[int], list[float]],
    live_initial: float,
    paper_initial: float,
) -> float | None:
    """RMS of the live - paper PnL (equity - initial balance) at the live snapshots, over
    the live initial balance (paper's PnL before its first snapshot is 0)."""
    if not live[0] or not paper[0] or live_initial <= 0:
        return None
    paper_ts = np.asarray(paper[0])
    index = np.searchsorted(paper_ts, np.asarray(live[0]), side="right") - 1
    paper_pnl = np.asarray(paper[1])[np.clip(index, 0, None)] - paper_initial
    diff = (np.asarray(live[1]) - live_initial) - np.where(index >= 0, paper_pnl, 0.0)
    return float(np.sqrt(np.mean(diff * diff)) / live_initial)


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _quantile(values: Sequence[float], q: float) -> float | None:
    return float(np.quantile(np.asarray(values), q)) if values else None


def compare(
    live_store: RunStore,
    live_run: str,
    paper_store: RunStore,
    paper_run: str,
    events: "ArrivalMids | Iterable[MarketEvent]",
    live_latencies_ms: Sequence[int],
) -> Drift:
    """The drift of `paper_run` (a replay) from `live_run` (module docstring); `events`:
    the capture's, or their arrival mids (taken once for several comparisons)."""
    live_rec, paper_rec = live_store.run(live_run), paper_store.run(paper_run)
    mids = events if isinstance(events, ArrivalMids) else ArrivalMids(events)
    live_fills, paper_fills = live_store.fills(live_rec.run_id), paper_store.fills(paper_rec.run_id)
    made = [o for o in live_store.orders(live_rec.run_id) if o.created >= live_rec.created_at]
    live_orders = order_facts(made, mids, fees_by_order(live_fills))
    paper_orders = order_facts(
        paper_store.orders(paper_rec.run_id), mids, fees_by_order(paper_fills)
    )
    pairs = pair_orders(live_orders, paper_orders)
    paired = sum(1 for p in pairs if p.live is not None and p.paper is not None)
    union = len(live_orders) + len(paper_orders) - paired
    drifts = [d for p in pairs if (d := p.slippage_drift_bps) is not None]
    live_slip = [o.slippage_bps for o in live_orders if o.slippage_bps is not None]
    paper_slip = [o.slippage_bps for o in paper_orders if o.slippage_bps is not None]
    live_curve = equity_curve(live_store, live_rec.run_id)
    paper_curve = equity_curve(paper_store, paper_rec.run_id)
    live_fill, paper_fill = fill_rate(live_orders), fill_rate(paper_orders)
    mock = json.loads(paper_rec.config_json).get("mock", {})
    summary: dict[str, Any] = {
        "live_orders": len(live_orders),
        "paper_orders": len(paper_orders),
        "paired_orders": paired,
        "signal_agreement": paired / union if union else 1.0,
        "live_fill_rate": live_fill,
        "paper_fill_rate": paper_fill,
        "fill_rate_drift": (
            None if live_fill is None or paper_fill is None else paper_fill - live_fill
        ),
        "live_slippage_bps": _median(live_slip),
        "paper_slippage_bps": _median(paper_slip),
        "median_slippage_drift_bps": _median([abs(d) for d in drifts]),
        "mean_slippage_drift_bps": statistics.fmean(drifts) if drifts else None,
        "live_fees": sum(f.fee for f in live_fills),
        "paper_fees": sum(f.fee for f in paper_fills),
        "live_funding": sum(f.payment for f in live_store.funding(live_rec.run_id)),
        "paper_funding": sum(f.payment for f in paper_store.funding(paper_rec.run_id)),
        "live_pnl": (live_curve[1][-1] - live_rec.initial_balance) if live_curve[1] else None,
        "paper_pnl": (paper_curve[1][-1] - paper_rec.initial_balance) if paper_curve[1] else None,
        "pnl_tracking_error": tracking_error(
            live_curve, paper_curve, live_rec.initial_balance, paper_rec.initial_balance
        ),
        "live_latency_ms_median": _median([float(x) for x in live_latencies_ms]),
        "live_latency_ms_p90": _quantile([float(x) for x in live_latencies_ms], 0.9),
        "paper_latency": _latency_text(mock),
    }
    model = {k: mock.get(k) for k in ("fill_model", "penetration_ticks", "queue_model",
                                      "latency_model", "latency", "slippage_bps")}  # fmt: skip
    return Drift(live_rec.run_id, paper_rec.run_id, model, pairs, summary, live_curve, paper_curve)


def portfolio_runs(
    live_store: RunStore,
    live_run: str,
    paper_store: RunStore,
    paper_run: str,
    portfolio: str | None = None,
) -> list[tuple[str, str, str]]:
    """(portfolio, its live run, its paper run) for `portfolio` or every portfolio of
    `live_run`; StoreError when the replay lacks one (module docstring)."""
    live = live_store.run(live_run)
    if portfolio is not None:
        ids = [portfolio]
    else:
        ids = [c.portfolio for c in live_store.children(live.run_id)] or [live.portfolio]
    return [
        (pid, live_store.portfolio_run(live.run_id, pid).run_id,
         paper_store.portfolio_run(paper_run, pid).run_id)
        for pid in ids
    ]  # fmt: skip


def _latency_text(mock: dict[str, Any]) -> str:
    samples = mock.get("latency_samples") or []
    if mock.get("latency_model") == "empirical" and samples:
        return f"empirical (median {statistics.median(samples):g} ms of {len(samples)})"
    return f"constant {mock.get('latency', '?')}"
