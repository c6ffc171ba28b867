"""Wiring each portfolio of a run (SPEC 10): its own ledger funded with its plan's
capital, and its recorder, risk gate, order flow and chart sampler on the run's one
store, journal, view and venue. Client ids name the portfolio when there are several,
since fills are routed back by them."""

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from perps_bot.config import Settings
from perps_bot.domain import parse_duration, portfolio_run_id
from perps_bot.ledger import Ledger
from perps_bot.monitoring import Journal, LiveView
from perps_bot.orchestrator.order_flow import OrderFlow
from perps_bot.orchestrator.plot_sampler import PlotSampler
from perps_bot.orchestrator.portfolio import Portfolio
from perps_bot.orchestrator.preflight import PlannedPortfolio, Preflight
from perps_bot.orchestrator.recorder import Recorder
from perps_bot.orchestrator.run_records import child_record
from perps_bot.orchestrator.trading_state import state_key
from perps_bot.risk import RiskGate
from perps_bot.risk.account_gate import AccountGate
from perps_bot.storage import RunStore
from perps_bot.storage.strategy_memory import StoredMemory
from perps_bot.strategies import Strategy
from perps_bot.venues import Venue

if TYPE_CHECKING:
    from perps_bot.storage.capture import CaptureWriter

log = logging.getLogger("perps_bot.run")


def portfolio_ledgers(settings: Settings, pre: Preflight) -> dict[str, Ledger]:
    """Each portfolio's own books, funded with its plan's capital."""
    return {
        planned.plan.id: Ledger(
            settings.account.model_copy(update={"initial_balance": planned.plan.capital}),
            pre.instruments,
            models_liquidation=pre.spec.models_liquidation,
            debug_invariants=settings.run.debug_invariants,
        )
        for planned in pre.portfolios
    }


@dataclass(slots=True)
class PortfolioWiring:
    """What every portfolio of a run is wired to: its store, journal, view, venue and
    capture, and the plans' strategies and ledgers."""

    settings: Settings
    pre: Preflight
    run_id: str
    new_run: bool
    store: RunStore
    journal: Journal
    view: LiveView
    venue: Venue
    capture: "CaptureWriter | None"
    strategies: dict[str, Strategy]
    ledgers: dict[str, Ledger]
    last_prices: dict[str, float]
    #: the account's limits over all portfolios (None: one portfolio)
    gate: AccountGate | None
    #: someone reads the live view's state besides the console (the status server)
    watched: bool
    #: keep the run's details (orders, fills, journal), not only its metrics
    details: bool
    #: keep the account's state across runs (trading state, executed plan rows): a run
    #: that trades the profile's account, not a backtest or a hosted paper session
    keeps_state: bool

    def portfolio(self, index: int, planned: PlannedPortfolio) -> Portfolio:
        """One plan's portfolio: its strategy's memory, its recorder (a child run of the
        account's run when there are several), risk gate, order flow and chart sampler."""
        settings, pid = self.settings, planned.plan.id
        multi = len(self.ledgers) > 1
        child = portfolio_run_id(self.run_id, pid, multi)
        strategy, ledger = self.strategies[pid], self.ledgers[pid]
        # kept per account, or per portfolio run (paper: one portfolio's executed plan
        # rows are not another's)
        scope = f"{settings.profile}/{state_key(pid, multi)}" if self.keeps_state else child
        strategy.ctx.memory = StoredMemory(self.store, scope)
        strategy.ctx.run_id = child
        if multi and self.new_run:
            self.store.create_run(child_record(settings, self.pre, planned, self.run_id, child,
                                               strategy))  # fmt: skip
        rec = Recorder(
            run_id=child,
            store=self.store,
            journal=self.journal.for_portfolio(child, pid) if multi else self.journal,
            view=self.view,
            ledger=ledger,
            logger=log,
            watched=self.watched,
            portfolio=pid if multi else None,
        )
        rec.capture = self.capture  # each portfolio's order round trips (client ids tell them)
        risk = RiskGate(planned.plan.risk, ledger, ledger.margin_required)
        real = self.pre.spec.real_orders
        flow = OrderFlow(
            risk=risk,
            ledger=ledger,
            venue=self.venue,
            instruments=self.pre.instruments,
            recorder=rec,
            client_prefix=_client_prefix(real, self.run_id, pid, index, multi),
            portfolio=pid,
            account=self.gate,
            # the exchange nets the portfolios' orders into one position per symbol
            netted=self.gate.account if real and multi and self.gate is not None else None,
        )
        every = parse_duration(settings.run.equity_interval)
        portfolio = Portfolio(
            id=pid,
            strategy=strategy,
            ledger=ledger,
            risk=risk,
            flow=flow,
            rec=rec,
            plot=PlotSampler(strategy, self.last_prices, every),
            symbols=planned.plan.symbols,
            details=self.details,
        )
        if real and multi:  # the exchange nets its positions with the others' (one-way)
            others = {s for q in self.pre.portfolios if q is not planned for s in q.plan.symbols}
            portfolio.protection.plain = frozenset(others & set(planned.plan.symbols))
        return portfolio


def share_stop_limit(portfolios: list[Portfolio], real: bool) -> None:
    """Portfolios on one exchange account (real orders, several): the exchange's limit
    of open stops and take-profits per symbol counts all of theirs, so each checks its
    entries beside the others' (OrderFlow.peers)."""
    if real and len(portfolios) > 1:
        for p in portfolios:
            p.flow.peers = [q.flow for q in portfolios if q is not p]


def _client_prefix(real: bool, run_id: str, pid: str, index: int, multi: bool) -> str:
    """Client ids: unique per run for real orders (Binance's 36 characters), and naming
    the portfolio when there are several (fills are routed back by them)."""
    if real:
        return f"pb{run_id[-6:]}x{index}x" if multi else f"pb{run_id[-6:]}x"
    return f"pb-{pid}-" if multi else "pb-"
