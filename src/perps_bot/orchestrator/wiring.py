"""Building one run from its settings and preflight: the object graph every mode shares
(strategy, risk gate, ledger, store, journal, logs, orchestrator), with the feed and
the venue taken from the mode's row of the table (orchestrator.modes) unless the
caller supplies them (backtest candles, a test harness).

The feed and the venue are built before anything is written, so a run that cannot
start (a symbol with no price process, a timeframe that does not fit the candles)
leaves no trace in the store.
"""

import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.console import Console

from perps_bot.config import ConfigError, Settings
from perps_bot.domain import RunMode, parse_duration
from perps_bot.feeds import Feed
from perps_bot.ledger import Ledger
from perps_bot.monitoring import Journal, LiveView, tag_run_log
from perps_bot.monitoring.logs import LineCounter
from perps_bot.orchestrator import checkpoint
from perps_bot.orchestrator.capture import CapturingFeed, open_capture, time_submissions
from perps_bot.orchestrator.clock import Clock, SimulatedClock, WallClock
from perps_bot.orchestrator.engine import Orchestrator
from perps_bot.orchestrator.modes import MODES, Wiring
from perps_bot.orchestrator.preflight import Preflight
from perps_bot.orchestrator.recorder import Recorder
from perps_bot.orchestrator.trading_state import TradingStateKeeper
from perps_bot.risk import RiskGate
from perps_bot.storage import RunRecord, RunStore, durable
from perps_bot.storage.capture import CaptureWriter
from perps_bot.strategies import Strategy, StrategyContext
from perps_bot.venues import Venue

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
    ledger: Ledger
    risk: RiskGate
    recorder: Recorder
    orchestrator: Orchestrator
    simulated: bool
    start_ms: int
    params_json: str
    #: where a resumed run went on from (None: a new run)
    resumed_from: str | None = None
    trading_state: "TradingStateKeeper | None" = None
    #: what an exchange-fed run saw, recorded for replays (SPEC 14)
    capture: CaptureWriter | None = None


def new_run_id(profile: str) -> str:
    """Unique and sortable; never part of any report body (reports stay reproducible)."""
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{profile}-{secrets.token_hex(3)}"


def start_ms(settings: Settings, simulated: bool) -> int:
    """Simulated runs start at mock.start (a seed alone fixes every timestamp)."""
    if not simulated:
        return int(time.time() * 1000)
    text = settings.mock.start.replace("Z", "+00:00")
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError as exc:
        raise ConfigError(f"config error: mock.start: not an ISO-8601 time ({text!r})") from exc


def build_run(
    settings: Settings,
    pre: Preflight,
    counter: LineCounter,
    *,
    feed: Feed | None,
    venue: Venue | None,
    console: Console,
    progress: bool,
    resume: str | None = None,
) -> Run:
    spec = pre.spec
    run = settings.run
    simulated = feed.simulated if feed is not None else spec.simulated_clock(settings)
    start = start_ms(settings, simulated)
    duration = run.duration_ms
    end = start + duration if duration is not None and simulated and feed is None else None
    ledger = Ledger(
        settings.account,
        pre.instruments,
        models_liquidation=spec.models_liquidation,
        debug_invariants=run.debug_invariants,
    )
    strategy = _strategy(settings, pre, ledger)
    wiring = Wiring(settings, pre.instruments, ledger, start, end, pre.public_client)
    if feed is None:
        if spec.build_feed is None:
            raise ConfigError(f"a {spec.mode} run needs its data from its command")
        feed = spec.build_feed(wiring)
    venue = venue if venue is not None else spec.build_venue(wiring)
    candle_bar_ms = feed.strategy_bar_ms(settings.strategy.timeframe)

    params_json = json.dumps(strategy.params.model_dump(mode="json"), sort_keys=True)
    store, run_id, resumed = _open_run(settings, pre, params_json, resume)
    tag_run_log(run_id)  # every line of the run from here on carries its id
    capture = open_capture(settings, pre, run_id, params_json) if resumed is None else None
    if capture is not None:
        feed = CapturingFeed(feed, capture)
        time_submissions(venue, capture)
    # a backtest journals to its own file, so it never interleaves with a live bot's
    events = "events.backtest.jsonl" if spec.mode is RunMode.BACKTEST else "events.jsonl"
    journal = Journal(Path(run.log_dir) / events, run_id)
    live_view = progress and run.live_view and console.is_terminal
    view = LiveView(console, title=f"perps-bot {settings.profile} {spec.mode}", enabled=live_view)
    rec = Recorder(
        run_id=run_id,
        store=store,
        journal=journal,
        view=view,
        ledger=ledger,
        logger=log,
        watched=live_view or run.http_port is not None,
    )
    rec.capture = capture
    risk = RiskGate(settings.risk, ledger, ledger.margin_required)
    clock: Clock = SimulatedClock(start) if simulated else WallClock()
    orchestrator = Orchestrator(
        feed=feed,
        venue=venue,
        strategy=strategy,
        risk=risk,
        ledger=ledger,
        instruments=pre.instruments,
        recorder=rec,
        clock=clock,
        equity_interval_ms=parse_duration(run.equity_interval),
        log_equity_interval_ms=parse_duration(run.log_equity_interval),
        bar_timeframe_ms=parse_duration(settings.strategy.timeframe),
        end_ms=end,
        client_prefix=f"pb{run_id[-6:]}x" if spec.real_orders else "pb-",
        poll_interval_ms=parse_duration(settings.exchange.poll_interval),
        reconcile_interval_ms=(
            parse_duration(settings.exchange.reconcile_interval) if spec.reconciles else None
        ),
        durable_fills=not simulated,
        candle_bar_ms=candle_bar_ms,
    )
    resumed_from, keeper = _make_durable(settings, pre, orchestrator, resumed, start)
    return Run(
        run_id=run_id,
        settings=settings,
        preflight=pre,
        store=store,
        journal=journal,
        counter=counter,
        ledger=ledger,
        risk=risk,
        recorder=rec,
        orchestrator=orchestrator,
        simulated=simulated,
        start_ms=start,
        params_json=params_json,
        resumed_from=resumed_from,
        trading_state=keeper,
        capture=capture,
    )


def _make_durable(
    settings: Settings,
    pre: Preflight,
    orchestrator: Orchestrator,
    resumed: RunRecord | None,
    start: int,
) -> tuple[str | None, TradingStateKeeper | None]:
    """SPEC 9 for this run: restore a resumed run from its checkpoint, take checkpoints
    (paper runs), import the stored trading state and store it at every change (runs
    that trade the profile's account). Returns (where it resumed from, the keeper)."""
    spec, rec = pre.spec, orchestrator.rec
    resumed_from = None
    if resumed is not None:
        try:
            resumed_from = checkpoint.resume(orchestrator, rec.store, resumed, pre.code_version)
        except BaseException:
            rec.journal.close()
            rec.store.close()
            raise
    if spec.resumable:
        orchestrator.after_batch = checkpoint.Checkpointer(orchestrator, pre.code_version)
    if not spec.keeps_trading_state:
        return resumed_from, None
    keeper = TradingStateKeeper(rec.store, orchestrator.risk, settings.profile, rec.run_id)
    keeper.restore(same_account=spec.reconciles, resumed=resumed is not None,
                   journal=rec.journal, ts=orchestrator.last_ts or start)  # fmt: skip
    rec.on_state_change = keeper.save
    return resumed_from, keeper


def _open_run(
    settings: Settings, pre: Preflight, params_json: str, resume: str | None
) -> tuple[RunStore, str, RunRecord | None]:
    """Open the store (the caller holds its lock): runs left `running` by a dead process
    become `crashed`; then a new run is created, or the run to resume is found."""
    store = RunStore(settings.database_path)
    try:
        with store.transaction():
            for crashed in durable.mark_crashed(store.connection):
                log.warning("run %s was left running by a process that is gone: crashed", crashed)
        if resume is None:
            run_id = new_run_id(settings.profile)
            store.create_run(_record(settings, pre, run_id, params_json))
            return store, run_id, None
        kinds = tuple(str(m) for m, row in MODES.items() if row.resumable)
        if not pre.spec.resumable:
            raise checkpoint.ResumeError(f"--resume continues paper runs ({', '.join(kinds)}),"
                                         f" not {pre.mode} runs")  # fmt: skip
        run = checkpoint.find_resumable(
            store, settings.profile, kinds, resume, settings.masked_dict()
        )
        return store, run.run_id, run
    except BaseException:
        store.close()
        raise


def _strategy(settings: Settings, pre: Preflight, ledger: Ledger) -> Strategy:
    ctx = StrategyContext(
        symbols=list(settings.run.symbols),
        account=ledger,
        order_size=settings.strategy.size_for,
        logger=logging.getLogger(f"perps_bot.strategy.{settings.strategy.name}"),
    )
    return pre.strategy_cls(settings.strategy.params, ctx)


def _record(settings: Settings, pre: Preflight, run_id: str, params_json: str) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        profile=settings.profile,
        kind=str(pre.mode),
        seed=settings.run.seed,
        config_hash=settings.config_hash(),
        config_json=json.dumps(settings.masked_dict(), sort_keys=True),
        strategy=settings.strategy.name,
        strategy_params=params_json,
        strategy_fingerprint=pre.fingerprint,
        code_version=pre.code_version,
        symbols=json.dumps(list(settings.run.symbols)),
        initial_balance=settings.account.initial_balance,
        created_at=int(time.time() * 1000),
        start_ts=None,
        end_ts=None,
        status="running",
        error_lines=0,
        warning_lines=0,
        detail=None,
        pid=os.getpid(),
        host=durable.this_host(),
    )
