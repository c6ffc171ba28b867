"""The console during a run: a rich live panel (equity, PnL, positions, last fills,
risk state) refreshed a few times a second in wall time, with a progress bar when the
run has a known length. Off when stdout is not a terminal (CI, pipes)."""

import time
from collections import deque
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from perps_bot.domain import iso_utc


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
    positions: dict[str, tuple[float, float]] = field(default_factory=dict)
    last_fills: deque[str] = field(default_factory=lambda: deque(maxlen=5))


class LiveView:
    REFRESH_S = 0.25

    def __init__(self, console: Console, *, title: str, enabled: bool) -> None:
        self.state = ViewState()
        self._console = console
        self._title = title
        self._enabled = enabled
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self._task = self._progress.add_task(title, total=None)
        self._live: Live | None = None
        self._next_refresh = 0.0

    def __enter__(self) -> "LiveView":
        if self._enabled:
            self._live = Live(self._render(), console=self._console, refresh_per_second=4)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(None, None, None)
            self._live = None

    def tick(self, done: int, total: int | None) -> None:
        """Called once per batch; redraws at most REFRESH_S apart (wall clock)."""
        if self._live is None:
            return
        now = time.monotonic()
        if now < self._next_refresh:
            return
        self._next_refresh = now + self.REFRESH_S
        self._progress.update(self._task, completed=done, total=total)
        self._live.update(self._render())

    def _render(self) -> Group:
        s = self.state
        table = Table(title=f"{self._title}  {iso_utc(s.ts) if s.ts else ''}", expand=False)
        table.add_column("equity", justify="right")
        table.add_column("realized", justify="right")
        table.add_column("unrealized", justify="right")
        table.add_column("fees", justify="right")
        table.add_column("funding", justify="right")
        table.add_column("fills", justify="right")
        table.add_column("denials", justify="right")
        table.add_column("risk")
        colour = (
            "green"
            if s.risk_state == "ACTIVE"
            else "yellow"
            if s.risk_state == "REDUCING"
            else "red"
        )
        table.add_row(
            f"{s.equity:,.2f}",
            f"{s.realized:,.2f}",
            f"{s.unrealized:,.2f}",
            f"{s.fees:,.2f}",
            f"{s.funding:,.2f}",
            str(s.fills),
            str(s.denials),
            f"[{colour}]{s.risk_state}[/]",
        )
        positions = Table(title="positions", expand=False)
        positions.add_column("symbol")
        positions.add_column("size", justify="right")
        positions.add_column("entry", justify="right")
        for symbol, (size, entry) in sorted(s.positions.items()):
            positions.add_row(symbol, f"{size:+.6g}", f"{entry:,.2f}")
        fills = Table(title="last fills", expand=False, show_header=False)
        fills.add_column("fill")
        for line in s.last_fills:
            fills.add_row(line)
        return Group(self._progress, table, positions, fills)
