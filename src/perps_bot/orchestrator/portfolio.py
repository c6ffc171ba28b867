"""A portfolio of a run (SPEC 10): one strategy with its own books and its own stages.

Every portfolio has its own ledger (cash, positions, PnL, fees, funding), risk gate
(trading state, circuit breaker), order flow (client ids, in-flight netting),
recorder (its rows are stored under its own run id, so its reports, exports and
promotion are those of a run), excursion tracker and plot sampler. The orchestrator
owns the one feed and the one venue and hands every event to the portfolios that
trade its symbol; a fill goes back to the portfolio whose order it filled.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from perps_bot.domain import Fill, Signal
from perps_bot.ledger import FillResult, Ledger
from perps_bot.orchestrator.excursions import ExcursionTracker, NoExcursions
from perps_bot.orchestrator.order_flow import OrderFlow
from perps_bot.orchestrator.plot_sampler import PlotSampler
from perps_bot.orchestrator.protection import Protector
from perps_bot.orchestrator.recorder import Recorder
from perps_bot.risk import RiskGate
from perps_bot.strategies import Strategy


@dataclass(slots=True)
class ClosingOut:
    """A flatten whose closes were made, kept until the portfolio is flat: a close the
    risk gate denied or the venue refused is made again (orchestrator.controls
    `close_again`)."""

    reason: str
    #: the positions left open are closed again from this time on
    next_try: int
    #: the warning that a position is still open was logged
    said: bool = False


class Portfolio:
    __slots__ = (
        "closing_out",
        "excursions",
        "flattening",
        "flattens",
        "flow",
        "id",
        "ledger",
        "lifted",
        "paused",
        "pending",
        "plot",
        "protection",
        "rec",
        "restate",
        "risk",
        "strategy",
        "symbols",
    )

    def __init__(
        self,
        *,
        id: str,
        strategy: Strategy,
        ledger: Ledger,
        risk: RiskGate,
        flow: OrderFlow,
        rec: Recorder,
        plot: PlotSampler,
        symbols: Sequence[str],
        details: bool = True,
    ) -> None:
        """`details=False` (run.record: metrics): no MAE/MFE rows, no price series."""
        self.id = id
        self.strategy = strategy
        self.ledger = ledger
        self.risk = risk
        self.flow = flow
        self.rec = rec
        self.plot = plot
        self.symbols = frozenset(symbols)
        tracker = ExcursionTracker if details else NoExcursions
        self.excursions = tracker(rec.run_id, rec.store)
        if not details:
            plot.next_ts = 2**62  # never samples
        #: signals of this event not yet turned into orders (after the equity snapshot)
        self.pending: list[Signal] = []
        self.protection = Protector(id, ledger, flow.instruments, flow.next_client_id)
        flow.protected = self.protection.protects
        flow.manages = self.protection.manages
        #: the strategy's signals are ignored (the session API's pause); positions stay
        self.paused = False
        #: flattens the session API has taken (checkpointed: a server started again applies
        #: the ones its sessions table counts beyond it once more, server.kept_controls)
        self.flattens = 0
        #: the reason of a flatten whose closes are not made yet: made at the next event
        #: on the positions then held (orchestrator.controls `flatten`)
        self.flattening: str | None = None
        #: a flatten whose closes were made, until the portfolio is flat (or resumed)
        self.closing_out: ClosingOut | None = None
        #: resumed, the strategy states what it wants once no close is on its way
        #: (orchestrator.venue_calls: `resume`)
        self.restate = False
        #: (cause, detail) of a halt resume-trading lifted after the checkpoint this run
        #: resumed from: its replay lifts it again at once (orchestrator.trading_state)
        self.lifted: tuple[str, str] | None = None

    def book_fill(self, fill: Fill) -> Sequence[Signal]:
        """A fill of this portfolio's order: ledger, records, the strategy's answer."""
        before = self.ledger.position_size(fill.symbol)
        result = self.ledger.apply_fill(fill)
        self.record_fill(fill, result, before)
        self.protection.on_fill(fill.client_id, fill.symbol, fill.size)
        return self.strategy.on_fill(fill)

    def record_fill(self, fill: Fill, result: FillResult, before: float) -> None:
        self.rec.fill(fill, result)
        excursions = self.excursions
        excursions.on_prices(fill.symbol, fill.price, fill.price)
        excursions.on_position(
            fill.symbol, fill.ts, before, result.position_after, result.entry_after
        )

    def snapshot(self, ts: int, log_line: bool) -> float:
        """One equity row; the risk gate sees the new equity (state changes journaled
        with their cause: the limit passed, which the halt alert and the log show)."""
        equity = self.rec.equity(ts, log_line=log_line)
        if ts >= self.plot.next_ts:
            self.plot.sample(ts)
        new_state = self.risk.on_equity(ts, equity)
        if new_state is not None:
            cause = self.risk.state_detail
            detail = f"{cause}; equity {equity:.2f}" if cause else f"equity {equity:.2f}"
            self.rec.state_change(ts, str(new_state), detail)
            if self.lifted is not None and cause == self.lifted[0]:
                lifted, self.lifted = self.lifted[1], None
                self.risk.resume()  # the peak restarts here, as resume-trading said
                self.rec.state_change(ts, str(self.risk.state), f"{lifted} (after the restart)")
        return equity
