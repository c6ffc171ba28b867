"""The console during a run: a rich live panel (equity, PnL, positions with mark,
unrealized PnL and liquidation price, last fills, risk state, tick-to-order latency)
refreshed a few times a second in wall time, with a progress bar when the run has a
known length. Off when stdout is not a terminal (CI, pipes).

The numbers are read from the books at each refresh (`watch` names them), so equity
shows from the first event, and unrealized PnL follows every price, at no cost to the
loop between refreshes. Prices and sizes are shown with the decimals of the
instrument's tick and step. The bar shows simulated progress on the simulated clock
and wall-clock progress on real-time runs with a duration; `complete()` fills it when
the run ends as planned.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from perps_bot.domain import Instrument, iso_utc
from perps_bot.monitoring.books import Books

if TYPE_CHECKING:  # rich's live display, bar and tables load when the view is drawn
    from rich.console import Console, Group
    from rich.live import Live
    from rich.progress import Progress
    from rich.table import Table


class PortfolioBooks(Books, Protocol):
    """What a position row reads of a portfolio's ledger."""

    def liquidation_price(self, symbol: str) -> float | None: ...


@dataclass(frozen=True, slots=True)
class PositionRow:
    portfolio: str
    symbol: str
    size: float
    entry: float
    mark: float
    unrealized: float
    liquidation: float | None


@dataclass(slots=True)
class ViewState:
    ts: int = 0
    equity: float = 0.0
    realized: float = 0.0
    unrealized: float = 0.0
    fees: float = 0.0
    funding: float = 0.0
    risk_state: str = "ACTIVE"
    denials: int = 0
    fills: int = 0
    latency_ms: float | None = None  # the last order's tick-to-order latency
    #: the account's positions: symbol -> (size, entry)
    positions: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: each portfolio's open positions with mark, unrealized PnL and liquidation price
    rows: list[PositionRow] = field(default_factory=list)
    last_fills: deque[str] = field(default_factory=lambda: deque(maxlen=5))


@dataclass(frozen=True, slots=True)
class _Watched:
    account: Books
    portfolios: Mapping[str, PortfolioBooks]
    instrument: Callable[[str], Instrument | None]
    now: Callable[[], int | None]
    risk: Callable[[], str] | None


class LiveView:
    REFRESH_S = 0.25

    def __init__(
        self,
        console: Console,
        *,
        title: str,
        enabled: bool,
        watched: bool = False,
        wall_duration_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`watched`: someone reads `state` besides the console (the status server);
        `wall_duration_s`: a real-time run's length (the bar follows the wall clock)."""
        self.state = ViewState()
        self._console = console
        self._title = title
        self._enabled = enabled
        self._watched = watched or enabled
        self._wall = wall_duration_s
        self._clock = clock
        self._started = clock()
        # a view that is not drawn (no terminal, --no-progress) has no bar: see _bar()
        self._progress: Progress | None = None
        if enabled:
            self._bar()
        self._books: _Watched | None = None
        self._live: Live | None = None
        self._next_refresh = 0.0

    def watch(
        self,
        account: Books,
        portfolios: Mapping[str, PortfolioBooks],
        instrument: Callable[[str], Instrument | None],
        now: Callable[[], int | None],
        risk: Callable[[], str] | None = None,
    ) -> None:
        """Read the numbers from these books at each refresh (`now`: the run's time;
        `risk`: its trading state, the most restrictive of its portfolios')."""
        self._books = _Watched(account, portfolios, instrument, now, risk)
        self.refresh()

    def __enter__(self) -> LiveView:
        self._started = self._clock()
        if self._enabled:
            from rich.live import Live  # drawn views only

            self._live = Live(self.render(), console=self._console, refresh_per_second=4)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self.refresh()
            self._live.update(self.render())
            self._live.__exit__(None, None, None)
            self._live = None

    def tick(self, done: int, total: int | None) -> None:
        """Called once per batch; refreshes at most REFRESH_S apart (wall clock)."""
        if not self._watched:
            return
        now = self._clock()
        if now < self._next_refresh:
            return
        self._next_refresh = now + self.REFRESH_S
        self.refresh()
        if self._live is None:
            return
        bar = self._bar()
        if self._wall is not None:
            bar.update(bar.task_ids[0], completed=min(now - self._started, self._wall),
                       total=self._wall)  # fmt: skip
        else:
            bar.update(bar.task_ids[0], completed=done, total=total)
        self._live.update(self.render())

    def complete(self) -> None:
        """The run ended as planned: the bar shows 100%."""
        if self._progress is not None:
            task = self._progress.tasks[0]
            total = task.total if task.total else max(task.completed, 1.0)
            self._progress.update(task.id, completed=total, total=total)
        self.refresh()
        if self._live is not None:
            self._live.update(self.render())

    @property
    def percentage(self) -> float:
        """The bar's; a view never drawn has no bar (0)."""
        return 0.0 if self._progress is None else float(self._progress.tasks[0].percentage)

    def _bar(self) -> Progress:
        """The progress bar, made when first drawn: rich's progress, live display and
        tables are a few percent of a backtest's start-up, which never draws them."""
        if self._progress is None:
            from rich.progress import (
                BarColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>5.1f}%"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self._console,
            )
            self._progress.add_task(self._title, total=None)
        return self._progress

    def refresh(self) -> None:
        """Bring `state` up to date with the books."""
        if self._books is None:
            return
        s, books = self.state, self._books.account
        s.ts = self._books.now() or s.ts
        if self._books.risk is not None:
            s.risk_state = self._books.risk()
        s.equity = books.equity()
        s.realized = books.realized_pnl()
        s.unrealized = books.unrealized_pnl()
        s.fees = books.fees_paid()
        s.funding = books.funding_total()
        s.positions = {x: (books.position_size(x), books.entry_price(x)) for x in books.symbols()}
        s.rows = [
            _row(pid, symbol, ledger)
            for pid, ledger in self._books.portfolios.items()
            for symbol in ledger.symbols()
            if ledger.position_size(symbol)
        ]

    # -- drawing ---------------------------------------------------------------------
    def render(self) -> Group:
        from rich.console import Group  # rich's renderables load when drawn: see _bar()
        from rich.table import Table

        s = self.state
        table = Table(title=f"{self._title}  {iso_utc(s.ts) if s.ts else ''}", expand=False)
        for column in ("equity", "realized", "unrealized", "fees", "funding", "fills",
                       "denials", "tick→order"):  # fmt: skip
            table.add_column(column, justify="right")
        table.add_column("risk")
        colour = {"ACTIVE": "green", "REDUCING": "yellow"}.get(s.risk_state, "red")
        latency = "-" if s.latency_ms is None else f"{s.latency_ms:.2f} ms"
        table.add_row(
            *(f"{v:,.2f}" for v in (s.equity, s.realized, s.unrealized, s.fees, s.funding)),
            str(s.fills),
            str(s.denials),
            latency,
            f"[{colour}]{s.risk_state}[/]",
        )
        fills = Table(title="last fills", expand=False, show_header=False)
        fills.add_column("fill")
        for line in s.last_fills:
            fills.add_row(line)
        return Group(self._bar(), table, self._positions(), fills)

    def _positions(self) -> Table:
        from rich.table import Table  # see render()

        several = len(self._books.portfolios) > 1 if self._books is not None else False
        table = Table(title="positions", expand=False)
        if several:
            table.add_column("portfolio")
        table.add_column("symbol")
        for column in ("size", "entry", "mark", "unrealized", "liq. price"):
            table.add_column(column, justify="right")
        for row in self.state.rows:
            price, size = _decimals(self._books, row.symbol)
            liq = "-" if row.liquidation is None else f"{row.liquidation:,.{price}f}"
            colour = "green" if row.unrealized >= 0 else "red"
            cells = [
                row.symbol,
                f"{row.size:+,.{size}f}",
                f"{row.entry:,.{price}f}",
                f"{row.mark:,.{price}f}",
                f"[{colour}]{row.unrealized:+,.2f}[/]",
                liq,
            ]
            table.add_row(*([row.portfolio, *cells] if several else cells))
        return table


def _row(portfolio: str, symbol: str, ledger: PortfolioBooks) -> PositionRow:
    size, entry = ledger.position_size(symbol), ledger.entry_price(symbol)
    mark = ledger.mark_price(symbol) or entry
    return PositionRow(portfolio, symbol, size, entry, mark, (mark - entry) * size,
                       ledger.liquidation_price(symbol))  # fmt: skip


def _decimals(books: _Watched | None, symbol: str) -> tuple[int, int]:
    """(price, size) decimals of the symbol's instrument (6 significant-ish if unknown)."""
    instrument = books.instrument(symbol) if books is not None else None
    if instrument is None:
        return 2, 6
    return instrument.price_decimals, instrument.size_decimals
