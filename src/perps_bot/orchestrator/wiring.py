"""Building one run from its settings and preflight: the object graph every mode shares
(strategy, risk gate, ledger, store, journal, logs, orchestrator), with the feed and
the venue taken from the mode's row of the table (orchestrator.modes) unless the
caller supplies them (backtest candles, a test harness).

The feed and the venue are built before anything is written, so a run that cannot
start (a symbol with no price process, a timeframe that does not fit the candles)
leaves no trace in the store. The store is opened and the run's rows in it (its
record, the crashed runs, the run id) are made by orchestrator.run_records
(`open_run`); `new_run_id`, `mark_crashed` and `metrics_only` stay importable from
here. What makes the run durable (checkpoints, flushes, the trading state kept across
runs) is orchestrator.durable_run.
"""

import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from perps_bot.config import ConfigError, Settings
from perps_bot.domain import AccountView, RunMode, parse_duration
from perps_bot.feeds import Feed
from perps_bot.feeds.bars import strategy_bars
from perps_bot.feeds.base import MatchingInput
from perps_bot.ledger import AccountBooks, Ledger
from perps_bot.monitoring import Journal, LiveView, NullJournal, tag_run_log
from perps_bot.monitoring.logs import LineCounter, portfolio_logger
from perps_bot.orchestrator import checkpoint
from perps_bot.orchestrator.capture import CapturingFeed, open_capture, time_submissions
from perps_bot.orchestrator.clock import SimulatedClock, WallClock
from perps_bot.orchestrator.durable_run import make_durable
from perps_bot.orchestrator.engine import Orchestrator
from perps_bot.orchestrator.modes import Wiring
from perps_bot.orchestrator.portfolio import Portfolio
from perps_bot.orchestrator.portfolio_wiring import (
    PortfolioWiring,
    portfolio_ledgers,
    share_stop_limit,
)
from perps_bot.orchestrator.preflight import PlannedPortfolio, Preflight
from perps_bot.orchestrator.recorder import Recorder
from perps_bot.orchestrator.run_records import mark_crashed as mark_crashed  # re-exported
from perps_bot.orchestrator.run_records import metrics_only as metrics_only  # re-exported
from perps_bot.orchestrator.run_records import new_run_id as new_run_id  # re-exported
from perps_bot.orchestrator.run_records import not_started, open_run, quietly
from perps_bot.orchestrator.trading_state import TradingStateKeeper
from perps_bot.orchestrator.watchers import Watchers, watch_run
from perps_bot.risk.account_gate import AccountGate
from perps_bot.storage import RunRecord, RunStore
from perps_bot.strategies import Strategy, StrategyContext
from perps_bot.venues import Venue

if TYPE_CHECKING:  # the writer (pyarrow.parquet) loads only for a run that is captured
    from perps_bot.storage.capture import CaptureWriter

log = logging.getLogger("perps_bot.run")


@dataclass(slots=True)
class Run:
    """One wired run, ready to execute."""

    run_id: str
    settings: Settings
    preflight: Preflight
    store: RunStore
    journal: Journal
    counter: LineCounter
    #: the account's books (a run with several portfolios: their sum)
    ledger: Ledger | AccountBooks
    recorder: Recorder
    orchestrator: Orchestrator
    simulated: bool
    start_ms: int
    params_json: str
    #: where a resumed run went on from (None: a new run)
    resumed_from: str | None = None
    #: each portfolio's trading state, kept across runs (runs that trade the account)
    trading_state: list[TradingStateKeeper] = field(default_factory=list)
    #: a run with several portfolios: the run of each (finished with the account's run)
    child_run_ids: list[str] = field(default_factory=list)
    #: what an exchange-fed run saw, recorded for replays (SPEC 14)
    capture: "CaptureWriter | None" = None
    #: its metrics and alerts (closed when the run is finished)
    watchers: Watchers | None = None


def start_ms(settings: Settings, simulated: bool) -> int:
    """Simulated runs start at mock.start (a seed alone fixes every timestamp)."""
    if not simulated:
        return int(time.time() * 1000)
    text = settings.mock.start.replace("Z", "+00:00")
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError as exc:
        raise ConfigError(f"config error: mock.start: not an ISO-8601 time ({text!r})") from exc


@dataclass(slots=True)
class _Parts:
    """What a run is built from before anything is written: its clock, its books and
    strategies, its feed and its venue."""

    simulated: bool
    span: tuple[int, int | None]
    ledgers: dict[str, Ledger]
    account: Ledger | AccountBooks
    strategies: dict[str, Strategy]
    feed: Feed
    venue: Venue


async def build_run(
    settings: Settings,
    pre: Preflight,
    counter: LineCounter,
    *,
    feed: Feed | None,
    venue: Venue | None,
    console: Console,
    progress: bool,
    resume: str | None = None,
    hosted: bool = False,
) -> Run:
    """Wire the run. A run that cannot start once the venue is built (a `--resume` the
    mode refuses, a checkpoint that does not fit) stops the venue it built: a live
    venue owns a private exchange client, which ccxt requires to be closed (preflight's
    public client, which a built feed took over, is its caller's to close)."""
    parts = _parts(settings, pre, feed, venue)
    try:
        return _wire(settings, pre, counter, parts, console, progress, resume, hosted)
    except BaseException:
        if venue is None:  # a venue given by the caller stays the caller's
            with contextlib.suppress(Exception):  # cleanup: the reason is the failure
                await parts.venue.stop()
        raise


def _parts(settings: Settings, pre: Preflight, feed: Feed | None, venue: Venue | None) -> _Parts:
    """The run's books, strategies, feed and venue (the mode's, unless given); the
    strategies' bars are checked before the venue is built (walkforward's windows)."""
    spec = pre.spec
    simulated = feed.simulated if feed is not None else spec.simulated_clock(settings)
    start = start_ms(settings, simulated)
    duration = settings.run.duration_ms
    end = start + duration if duration is not None and simulated and feed is None else None
    ledgers = portfolio_ledgers(settings, pre)
    first = next(iter(ledgers.values()))
    account = AccountBooks(list(ledgers.values())) if len(ledgers) > 1 else first
    multi = len(pre.portfolios) > 1
    strategies = {p.plan.id: _strategy(settings, p, ledgers[p.plan.id], multi=multi)
                  for p in pre.portfolios}  # fmt: skip
    wiring = Wiring(
        settings, pre.instruments, account, start, end, pre.public_client, books=ledgers.__getitem__
    )
    if feed is None:
        if spec.build_feed is None:
            raise ConfigError(f"a {spec.mode} run needs its data from its command")
        feed = spec.build_feed(wiring)
    bars = strategy_bars(feed, settings.strategy.timeframe)
    for strategy in strategies.values():
        strategy.check_bars(strategy.params, bars)
    venue = venue if venue is not None else spec.build_venue(wiring)
    return _Parts(simulated, (start, end), ledgers, account, strategies, feed, venue)


def _wire(
    settings: Settings,
    pre: Preflight,
    counter: LineCounter,
    parts: _Parts,
    console: Console,
    progress: bool,
    resume: str | None,
    hosted: bool,
) -> Run:
    """The run's rows, journal, view, portfolios and orchestrator on `parts`."""
    feed, venue = parts.feed, parts.venue
    matching = feed.matching_view() if isinstance(feed, MatchingInput) else None
    if matching is not None:  # a live capture's replay: its paper venue (venues.mock)
        from perps_bot.venues.mock import MockVenue

        if isinstance(venue, MockVenue):
            venue.match_through(matching)
    candle_bar_ms = feed.strategy_bar_ms(settings.strategy.timeframe)

    params_json = _params_json(pre, parts.strategies)
    store, run_id, resumed, crashed = open_run(settings, pre, params_json, resume, hosted)
    with contextlib.ExitStack() as undo:  # a run that fails to start closes what it opened
        undo.push(not_started(store, run_id, resumed is not None))
        run = _wire_opened(settings, pre, counter, parts, console, progress, hosted,
                           (store, run_id, resumed, crashed), (params_json, candle_bar_ms),
                           undo)  # fmt: skip
        undo.pop_all()
    return run


def _wire_opened(
    settings: Settings,
    pre: Preflight,
    counter: LineCounter,
    parts: _Parts,
    console: Console,
    progress: bool,
    hosted: bool,
    opened: tuple[RunStore, str, RunRecord | None, list[str]],
    made: tuple[str, int | None],
    undo: contextlib.ExitStack,
) -> Run:
    """The rest of `_wire`, once the run's rows are made; what it opens, `undo` closes
    should the start fail."""
    spec = pre.spec
    feed, venue, strategies, ledgers = parts.feed, parts.venue, parts.strategies, parts.ledgers
    account, simulated = parts.account, parts.simulated
    (start, end), multi = parts.span, len(pre.portfolios) > 1
    (params_json, candle_bar_ms), (store, run_id, resumed, crashed) = made, opened
    tag_run_log(run_id)  # every line of the run from here on carries its id
    capture = open_capture(settings, pre, run_id, params_json, resumed=resumed is not None)
    if capture is not None:
        undo.callback(quietly, capture.close)
        feed = CapturingFeed(feed, capture)
        time_submissions(venue, capture)
    journal = _journal(settings, run_id)
    undo.callback(quietly, journal.close)
    view, watched = _live_view(settings, spec.mode, console, progress, simulated)
    last_prices: dict[str, float] = {}
    # a hosted paper session keeps no state of the profile's account (sessions of one
    # profile run side by side); a live one trades the account, whose halt, stops and
    # executed plan rows outlive any session
    keeps = spec.keeps_trading_state and (not hosted or spec.real_orders)
    shared = PortfolioWiring(settings, pre, run_id, resumed is None, store, journal, view, venue,
                     capture, strategies, ledgers, last_prices,
                     _account_gate(settings, pre, account),
                     watched, not metrics_only(settings), keeps)  # fmt: skip
    portfolios = [shared.portfolio(index, planned) for index, planned in enumerate(pre.portfolios)]
    share_stop_limit(portfolios, spec.real_orders)
    account_rec = None
    if multi:
        account_rec = Recorder(run_id=run_id, store=store, journal=journal, view=view,
                               ledger=account, logger=log, watched=watched)  # fmt: skip
    orchestrator = _orchestrator(settings, pre, feed, venue, portfolios, account_rec,
                                 simulated, (start, end), last_prices, candle_bar_ms)  # fmt: skip
    view.watch(account, ledgers, pre.instruments.get, lambda: orchestrator.last_ts,
               lambda: str(orchestrator.trading_state))  # fmt: skip
    resumed_from, keepers = make_durable(settings, pre, orchestrator, resumed, start,
                                         keeps_state=keeps)  # fmt: skip
    if capture is not None and resumed is not None:  # down from the checkpoint until now
        capture.gap(orchestrator.last_ts, orchestrator.clock.now())
    after = orchestrator.after_batch
    soon = after.soon if isinstance(after, checkpoint.Checkpointer) else None
    watchers = watch_run(settings, spec.mode, run_id, journal, portfolios, soon,
                         resumed=resumed is not None, crashed=crashed)  # fmt: skip
    if watchers is not None:
        undo.callback(quietly, watchers.close)
        if watchers.alerts is not None:
            undo.callback(quietly, watchers.alerts.close)
    if isinstance(after, checkpoint.Checkpointer):  # a resumed run's lines: all its parts'
        after.keep("log_lines", counter)
    if isinstance(after, checkpoint.Checkpointer) and watchers and watchers.alerts:
        after.keep("alerts", watchers.alerts.rules)  # the day a resumed run sums up
    return Run(
        run_id=run_id,
        settings=settings,
        preflight=pre,
        store=store,
        journal=journal,
        counter=counter,
        ledger=account,
        recorder=orchestrator.rec,
        orchestrator=orchestrator,
        simulated=simulated,
        start_ms=start,
        params_json=params_json,
        resumed_from=resumed_from,
        trading_state=keepers,
        child_run_ids=[p.rec.run_id for p in portfolios] if multi else [],
        capture=capture,
        watchers=watchers,
    )


def _account_gate(settings: Settings, pre: Preflight, account: AccountView) -> AccountGate | None:
    """The profile's caps over the whole account: the sum of several portfolios, or one
    portfolio whose `risk` keys differ from the profile's (its own limits do not lift
    the account's); None when the one portfolio's gate already holds the profile's."""
    if len(pre.portfolios) == 1 and pre.portfolios[0].plan.risk == settings.risk:
        return None
    return AccountGate(settings.risk, account, settings.symbols)


def _live_view(
    settings: Settings, mode: RunMode, console: Console, progress: bool, simulated: bool
) -> tuple[LiveView, bool]:
    """The console's live view (a terminal only) and whether anyone watches its state
    (the view or the status server): the recorders keep it up to date only then."""
    run = settings.run
    live_view = progress and run.live_view and console.is_terminal
    watched = live_view or run.http_port is not None
    duration = run.duration_ms
    wall_s = duration / 1000.0 if duration is not None and not simulated else None
    view = LiveView(console, title=f"perps-bot {settings.profile} {mode}",
                    enabled=live_view, watched=watched, wall_duration_s=wall_s)  # fmt: skip
    return view, watched


def _orchestrator(
    settings: Settings,
    pre: Preflight,
    feed: Feed,
    venue: Venue,
    portfolios: list[Portfolio],
    account_rec: Recorder | None,
    simulated: bool,
    span: tuple[int, int | None],
    last_prices: dict[str, float],
    candle_bar_ms: int | None,
) -> Orchestrator:
    """The engine on the run's clock, with the profile's intervals."""
    run, spec = settings.run, pre.spec
    start, end = span
    reconcile = settings.exchange.reconcile_interval
    return Orchestrator(
        feed=feed,
        venue=venue,
        portfolios=portfolios,
        account=account_rec,
        clock=SimulatedClock(start) if simulated else WallClock(),
        last_prices=last_prices,
        equity_interval_ms=parse_duration(run.equity_interval),
        log_equity_interval_ms=parse_duration(run.log_equity_interval),
        bar_timeframe_ms=parse_duration(settings.strategy.timeframe),
        end_ms=end,
        poll_interval_ms=parse_duration(settings.exchange.poll_interval),
        reconcile_interval_ms=parse_duration(reconcile) if spec.reconciles else None,
        durable_fills=not simulated,
        candle_bar_ms=candle_bar_ms,
        adaptive_path=settings.mock.candle_path == "adaptive",
    )


def _params_json(pre: Preflight, strategies: dict[str, Strategy]) -> str:
    if len(strategies) == 1:
        (strategy,) = strategies.values()
        return json.dumps(strategy.params.model_dump(mode="json"), sort_keys=True)
    return json.dumps(
        {pid: s.params.model_dump(mode="json") for pid, s in strategies.items()}, sort_keys=True
    )


def _journal(settings: Settings, run_id: str) -> Journal:
    if metrics_only(settings):
        return NullJournal(run_id)
    # a backtest journals to its own file, so it never interleaves with a live bot's
    offline = settings.mode in (RunMode.BACKTEST, RunMode.WALKFORWARD)
    events = "events.backtest.jsonl" if offline else "events.jsonl"
    return Journal(Path(settings.run.log_dir) / events, run_id)


def _strategy(
    settings: Settings, planned: PlannedPortfolio, ledger: Ledger, *, multi: bool
) -> Strategy:
    """The portfolio's strategy; in a run with several, its log lines name the portfolio
    (its WARNING/ERROR lines count against its own promotion, not the others')."""
    plan = planned.plan
    name = f"perps_bot.strategy.{plan.strategy}"
    ctx = StrategyContext(
        symbols=list(plan.symbols),
        account=ledger,
        order_size=plan.size_for,
        logger=portfolio_logger(name, plan.id) if multi else logging.getLogger(name),
        llm=settings.llm.for_run(settings.run.data_dir),
    )
    return planned.strategy_cls(plan.params, ctx)
