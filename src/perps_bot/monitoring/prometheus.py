"""Prometheus metrics of the runs in this process (SPEC 11 `/metrics`), on a registry
of their own: `metrics_registry()`, exposed with `exposition()`.

Counters and the tick-to-order histogram are fed by the run's journal lines (a
`RunMetrics` is a journal listener: one dict lookup and an addition per line); gauges
(equity, PnL, positions, marks) are read from the books when scraped, so they are
exact at any moment; the risk state follows the journal's state changes. A finished
run keeps its last values (frozen) for `FINISHED_RETENTION_S`, long enough for a scrape
at any usual interval to see how it ended, or until a run with the same profile and
portfolio starts; then its series go. Without that limit a session server that runs
for weeks would export every session it ever ran. Runs still going are never replaced,
so two sessions of one server running the same profile and portfolio id side by side
are both exported.

Every series carries `profile`, `run` (the run id: what tells such sessions apart; a
resumed run keeps its id, so its counters start again from zero on the same series,
which is a restart to Prometheus, and `rate()` copes) and `portfolio` (the portfolio's
id, "account" for the account of a run with several); per-symbol series carry `symbol`.
`METRICS` is the list of what is exported, with HELP text; the Grafana dashboard
(deploy/grafana/perps-bot.json) queries only these names.
"""

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from perps_bot.domain import TradingState
from perps_bot.monitoring.books import Books

if TYPE_CHECKING:  # prometheus_client is imported when first scraped (bot start-up)
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )

    _Values: TypeAlias = CounterMetricFamily | GaugeMetricFamily

PREFIX = "perps_bot"
#: tick-to-order latency buckets, seconds (50 us .. 2.5 s)
LATENCY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                   0.05, 0.1, 0.25, 0.5, 1.0, 2.5)  # fmt: skip
#: how long a finished run's series stay exported (seconds of the monotonic clock)
FINISHED_RETENTION_S = 15 * 60.0


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str  # without the prefix; counters are exported with `_total`
    kind: str  # counter | gauge | histogram
    help: str
    labels: tuple[str, ...]

    @property
    def family(self) -> str:
        return f"{PREFIX}_{self.name}"

    @property
    def series(self) -> tuple[str, ...]:
        """The sample names Prometheus stores (what a query names)."""
        if self.kind == "counter":
            return (f"{self.family}_total",)
        if self.kind == "histogram":
            return tuple(f"{self.family}_{s}" for s in ("bucket", "count", "sum"))
        return (self.family,)


_P, _PS = ("profile", "run", "portfolio"), ("profile", "run", "portfolio", "symbol")
METRICS = (
    MetricSpec("fills", "counter", "Fills booked (liquidations included).", _PS),
    MetricSpec("trades", "counter", "Round trips closed.", _PS),
    MetricSpec("denials", "counter", "Orders denied, by reason.", (*_PS, "reason")),
    MetricSpec("liquidations", "counter", "Forced closes by liquidation.", _PS),
    MetricSpec(
        "orders", "counter", "Orders sent (status new) and their later statuses.", (*_PS, "status")
    ),
    MetricSpec("reconnects", "counter", "Exchange reconnects (each followed by a reconcile).", _P),
    MetricSpec("equity", "gauge", "Equity: wallet balance plus unrealized PnL.", _P),
    MetricSpec("realized_pnl", "gauge", "Realized PnL since the run started.", _P),
    MetricSpec("unrealized_pnl", "gauge", "Unrealized PnL of the open positions.", _P),
    MetricSpec("fees", "gauge", "Trading fees paid since the run started.", _P),
    MetricSpec("funding", "gauge", "Funding paid (negative: received) since the run started.", _P),
    MetricSpec("position_size", "gauge", "Signed position size (contracts; short < 0).", _PS),
    MetricSpec("mark_price", "gauge", "Last mark price the books used.", _PS),
    MetricSpec(
        "risk_state",
        "gauge",
        "Trading state, one-hot: 1 for the portfolio's current state"
        " (ACTIVE, REDUCING or HALTED), 0 for the others.",
        (*_P, "state"),
    ),
    MetricSpec(
        "tick_to_order_seconds",
        "histogram",
        "Wall time from receiving the market event to sending the order it caused.",
        _PS,
    ),
)
SPECS = {spec.name: spec for spec in METRICS}


@dataclass(frozen=True, slots=True)
class _Frozen:
    """A finished run's books as they ended (the run's ledger is let go)."""

    values: dict[str, float]
    positions: dict[str, tuple[float, float, float]]  # size, entry, mark

    @classmethod
    def of(cls, books: Books, traded: frozenset[str]) -> "_Frozen":
        names = ("equity", "realized_pnl", "unrealized_pnl", "fees_paid", "funding_total")
        return cls(
            {name: float(getattr(books, name)()) for name in names},
            {
                s: (books.position_size(s), books.entry_price(s), books.mark_price(s))
                for s in _symbols(books, traded)
            },
        )

    def equity(self) -> float:
        return self.values["equity"]

    def realized_pnl(self) -> float:
        return self.values["realized_pnl"]

    def unrealized_pnl(self) -> float:
        return self.values["unrealized_pnl"]

    def fees_paid(self) -> float:
        return self.values["fees_paid"]

    def funding_total(self) -> float:
        return self.values["funding_total"]

    def symbols(self) -> list[str]:
        return list(self.positions)

    def position_size(self, symbol: str) -> float:
        return self.positions[symbol][0]

    def entry_price(self, symbol: str) -> float:
        return self.positions[symbol][1]

    def mark_price(self, symbol: str) -> float:
        return self.positions[symbol][2]


@dataclass(slots=True)
class _Latency:
    buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    count: int = 0
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.buckets[i] += 1
                break

    def cumulative(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, n in zip(LATENCY_BUCKETS, self.buckets, strict=True):
            running += n
            out.append((repr(bound), float(running)))
        out.append(("+Inf", float(self.count)))
        return out


class RunMetrics:
    """The metrics of one run: a journal listener for the counters, the books of its
    portfolios for the gauges. `start()` puts it on the registry, `close()` freezes it."""

    def __init__(self, profile: str, run_id: str, default_portfolio: str) -> None:
        self.profile = profile
        self.run_id = run_id
        #: when close() froze it (time.monotonic()), None while the run goes on
        self.closed_at: float | None = None
        self._default = default_portfolio
        #: (metric name, label values after profile) -> count
        self.counts: dict[tuple[str, tuple[str, ...]], float] = {}
        self._latency: dict[tuple[str, ...], _Latency] = {}
        self._books: dict[str, Books] = {}
        self._states: dict[str, str] = {}
        self._traded: dict[str, frozenset[str]] = {}

    def watch(
        self,
        portfolio: str,
        books: Books,
        state: str = TradingState.ACTIVE,
        symbols: Iterable[str] = (),
    ) -> None:
        """Export `books` as the gauges of `portfolio`, whose trading state is `state`;
        `symbols`: those it trades, whose position (0 when flat) and mark are exported
        all the time, not only while a position is open."""
        self._books[portfolio] = books
        self._states[portfolio] = str(state)
        self._traded[portfolio] = frozenset(symbols)

    def start(self) -> "RunMetrics":
        _RUNS.add(self)
        return self

    def close(self) -> None:
        self.closed_at = time.monotonic()
        self._books = {pid: _Frozen.of(books, self._traded.get(pid, frozenset()))
                       for pid, books in self._books.items()}  # fmt: skip

    def remove(self) -> None:
        """Off the registry (a server dropping a finished session's series)."""
        _RUNS.remove(self)

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    @property
    def portfolios(self) -> set[str]:
        return {self._default, *self._books}

    # -- journal lines -----------------------------------------------------------------
    def __call__(self, type_: str, line: dict[str, Any]) -> None:
        handler = _HANDLERS.get(type_)
        if handler is not None:
            handler(self, line.get("portfolio", self._default), line)

    def count(self, name: str, *labels: str) -> None:
        key = (name, labels)
        self.counts[key] = self.counts.get(key, 0.0) + 1.0

    def _order(self, pid: str, line: dict[str, Any]) -> None:
        self.count("orders", pid, line["symbol"], line["status"])
        latency = line.get("latency_ms")
        if latency is not None:
            key = (pid, line["symbol"])
            if key not in self._latency:
                self._latency[key] = _Latency()
            self._latency[key].observe(latency / 1000.0)

    def _fill(self, pid: str, line: dict[str, Any]) -> None:
        self.count("fills", pid, line["symbol"])
        if line["type"] == "liquidation":
            self.count("liquidations", pid, line["symbol"])

    def _state(self, pid: str, line: dict[str, Any]) -> None:
        self._states[pid] = line["state"]

    def _reconcile(self, pid: str, line: dict[str, Any]) -> None:
        if line.get("why") == "reconnect":
            self.count("reconnects", pid)

    # -- scrape ------------------------------------------------------------------------
    def samples(self, families: "dict[str, _Values]", latency: "HistogramMetricFamily") -> None:
        """Add this run's samples to `families` (by metric name) and `latency`."""
        run = self.profile, self.run_id
        for (name, labels), value in self.counts.copy().items():
            families[name].add_metric([*run, *labels], value)
        for (pid, symbol), hist in self._latency.copy().items():
            latency.add_metric([*run, pid, symbol], hist.cumulative(), hist.total)
        for pid, books in self._books.copy().items():
            families["equity"].add_metric([*run, pid], books.equity())
            families["realized_pnl"].add_metric([*run, pid], books.realized_pnl())
            families["unrealized_pnl"].add_metric([*run, pid], books.unrealized_pnl())
            families["fees"].add_metric([*run, pid], books.fees_paid())
            families["funding"].add_metric([*run, pid], 0.0 - books.funding_total())  # paid
            for symbol in _symbols(books, self._traded.get(pid, frozenset())):
                families["position_size"].add_metric(
                    [*run, pid, symbol], books.position_size(symbol)
                )
                if mark := books.mark_price(symbol):  # none before its first price
                    families["mark_price"].add_metric([*run, pid, symbol], mark)
        for pid, current in self._states.copy().items():
            for state in TradingState:
                families["risk_state"].add_metric([*run, pid, str(state)], float(current == state))


def _symbols(books: Books, traded: frozenset[str]) -> list[str]:
    """The symbols of a portfolio's gauges: those it trades and any it holds."""
    return sorted(traded.union(books.symbols()))


_HANDLERS = {
    "order": RunMetrics._order,
    "order_update": RunMetrics._order,
    "fill": RunMetrics._fill,
    "liquidation": RunMetrics._fill,
    "trade_closed": lambda m, pid, line: m.count("trades", pid, line["symbol"]),
    "denial": lambda m, pid, line: m.count("denials", pid, line["symbol"], line["reason"]),
    "state_change": RunMetrics._state,
    "reconcile": RunMetrics._reconcile,
}


def _replaced_by(old: RunMetrics, new: RunMetrics) -> bool:
    if old.run_id == new.run_id:
        return True
    return old.closed and old.profile == new.profile and bool(old.portfolios & new.portfolios)


def _values(spec: MetricSpec) -> "_Values":
    from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily

    kind = CounterMetricFamily if spec.kind == "counter" else GaugeMetricFamily
    return kind(spec.family, spec.help, labels=list(spec.labels))


class _Runs:
    """The runs of this process, collected on every scrape."""

    def __init__(self) -> None:
        self._runs: list[RunMetrics] = []
        self._lock = threading.Lock()

    def add(self, run: RunMetrics) -> None:
        """A new run replaces the finished runs with the same profile and a portfolio in
        common (and an earlier start of itself: a resumed run)."""
        with self._lock:
            self._runs = [r for r in self._runs if not _replaced_by(r, run)] + [run]

    def remove(self, run: RunMetrics) -> None:
        with self._lock:
            self._runs = [r for r in self._runs if r is not run]

    def collect(self) -> "list[Metric]":
        from prometheus_client.metrics_core import HistogramMetricFamily

        families = {spec.name: _values(spec) for spec in METRICS if spec.kind != "histogram"}
        spec = SPECS["tick_to_order_seconds"]
        latency = HistogramMetricFamily(spec.family, spec.help, labels=list(spec.labels))
        expired = time.monotonic() - FINISHED_RETENTION_S
        with self._lock:
            self._runs = [r for r in self._runs if r.closed_at is None or r.closed_at > expired]
            runs = list(self._runs)
        for run in runs:
            run.samples(families, latency)
        return [*families.values(), latency]


_RUNS = _Runs()
_REGISTRY: "list[CollectorRegistry]" = []


def metrics_registry() -> "CollectorRegistry":
    """The registry every run of this process reports to (serve it at `/metrics`)."""
    if not _REGISTRY:
        from prometheus_client import CollectorRegistry

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_RUNS)  # a collector: it has collect()
        _REGISTRY.append(registry)
    return _REGISTRY[0]


def exposition() -> tuple[bytes, str]:
    """The Prometheus text exposition of `metrics_registry()` and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(metrics_registry()), CONTENT_TYPE_LATEST
