"""Builds one run from validated settings and drives it: the only place that knows
which feed and venue a profile uses (mock for dev, ccxt for canary and prod).

Everything after wiring (strategy, risk gate, ledger, store, journal, logs) is the
same object graph for every profile and for backtests.
"""

import asyncio
import contextlib
import gc
import json
import logging
import os
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from rich.console import Console

from perps_bot import __version__
from perps_bot.config import ConfigError, Settings
from perps_bot.domain import PerpsBotError, parse_duration
from perps_bot.feeds import Feed
from perps_bot.ledger import Ledger
from perps_bot.metrics.promotion import has_promotion
from perps_bot.metrics.report import headline
from perps_bot.monitoring import Journal, LiveView, close_logging, log_file_name, setup_logging
from perps_bot.orchestrator.clock import Clock, SimulatedClock, WallClock
from perps_bot.orchestrator.engine import Orchestrator, StopRun
from perps_bot.orchestrator.recorder import Recorder
from perps_bot.risk import RiskGate
from perps_bot.storage import RunRecord, RunStore
from perps_bot.strategies import StrategyContext, load_strategy, strategy_fingerprint
from perps_bot.venues import Venue

if TYPE_CHECKING:
    from perps_bot.monitoring.http import StatusServer

log = logging.getLogger("perps_bot.run")


class PromotionMissing(PerpsBotError):
    """prod refuses a strategy fingerprint that was never promoted to prod."""


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: str
    status: str
    db_path: Path
    fills: int
    final_equity: float
    headline: str


def new_run_id(profile: str) -> str:
    """Unique and sortable; never part of any report body (reports stay reproducible)."""
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{profile}-{secrets.token_hex(3)}"


def _start_ms(settings: Settings) -> int:
    if settings.run.dev_fast:
        text = settings.mock.start.replace("Z", "+00:00")
        try:
            return int(datetime.fromisoformat(text).timestamp() * 1000)
        except ValueError as exc:
            raise ConfigError(f"config error: mock.start: not an ISO-8601 time ({text!r})") from exc
    return int(time.time() * 1000)


def _strategy_bar_ms(feed: Feed, settings: Settings) -> int | None:
    """Candle feeds aggregate their candles to a longer strategy timeframe (see
    CandleFeed.strategy_bar_ms); tick feeds build bars from prices instead."""
    bar_ms = getattr(feed, "strategy_bar_ms", None)
    return None if bar_ms is None else bar_ms(settings.strategy.timeframe)


def _build_feed_and_venue(
    settings: Settings, start_ms: int, end_ms: int | None
) -> tuple[Feed, Venue]:
    symbols = list(settings.run.symbols)
    if settings.broker.kind == "mock":
        from perps_bot.feeds.random_walk import RandomWalkFeed
        from perps_bot.venues.mock import MockVenue

        feed: Feed = RandomWalkFeed(
            settings.mock,
            symbols,
            settings.run.seed,
            start_ms=start_ms,
            end_ms=end_ms,
            realtime=not settings.run.dev_fast,
            funding_interval_ms=parse_duration(settings.account.funding_interval),
        )
        return feed, MockVenue(settings.mock, settings.fees, settings.run.seed)
    from perps_bot.exchange import create_exchange
    from perps_bot.feeds.exchange_stream import exchange_feed

    public = create_exchange(settings.exchange, private=False)
    feed = exchange_feed(public, settings.exchange, symbols)
    if settings.run.dry_run:
        from perps_bot.venues.mock import MockVenue

        return feed, MockVenue(settings.mock, settings.fees, settings.run.seed)
    from perps_bot.venues.live import LiveVenue

    private = create_exchange(settings.exchange, private=True)
    return feed, LiveVenue(
        private, settings.exchange, settings.account, symbols, fees=settings.fees
    )


@contextlib.contextmanager
def _interrupts(orchestrator: Orchestrator) -> Iterator[None]:
    """First Ctrl-C (or SIGTERM): stop cleanly after the current batch, flushing state.
    A second Ctrl-C aborts at once (state already flushed stays)."""
    previous: list[tuple[signal.Signals, Any]] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if orchestrator.stop_requested and orchestrator.stop_reason == "interrupted":
            raise KeyboardInterrupt
        orchestrator.request_stop("interrupted")

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread (tests)
            previous.append((sig, signal.signal(sig, handler)))
    try:
        yield
    finally:
        for sig, old in previous:
            signal.signal(sig, old)


@contextlib.contextmanager
def _collector_tuned() -> Iterator[None]:
    """Run with the cyclic garbage collector out of the hot path.

    The loop allocates short-lived, acyclic objects per event (candles, fills,
    tuples) that reference counting frees at once; the default collector still
    traverses the young generation every 700 allocations and, every so often, every
    tracked object of the process (modules, config, the strategy ...). That was about
    8% of a backtest. Objects that exist when the run starts are frozen (never
    traversed again), and the young generation is collected every 50,000 net
    allocations instead of 700: cycles, which are rare here, are still collected.
    The previous settings are restored afterwards (tests run many bots in one
    process)."""
    thresholds = gc.get_threshold()
    freeze = gc.get_freeze_count() == 0  # an embedding program's own freeze is left alone
    if freeze:
        gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if freeze:
            gc.unfreeze()


def _status_server(
    settings: Settings, run_id: str, rec: Recorder, risk: RiskGate
) -> "StatusServer | None":
    """The optional --http-port server, reading the live view's state."""
    if settings.run.http_port is None:
        return None
    from perps_bot.monitoring.http import StatusServer  # aiohttp only when serving

    def status() -> dict[str, object]:
        state = rec.view.state
        return {
            "run_id": run_id,
            "profile": settings.profile,
            "ts": state.ts,
            "equity": state.equity,
            "realized_pnl": state.realized,
            "unrealized_pnl": state.unrealized,
            "fees": state.fees,
            "funding": state.funding,
            "fills": rec.fills,
            "liquidations": rec.liquidations,
            "risk_state": str(risk.state),
            "positions": dict(state.positions),
            "denials": dict(rec.denials),
        }

    return StatusServer(status, port=settings.run.http_port)


async def run_bot(
    settings: Settings,
    *,
    feed: Feed | None = None,
    venue: Venue | None = None,
    kind: str | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> RunResult:
    """Run the bot described by `settings` until the feed ends, the duration passes or
    Ctrl-C; return what happened. Raises ConfigError / StrategyError / PromotionMissing
    (one-line messages) before anything is written."""
    console = console or Console(stderr=False)
    run = settings.run
    strategy_cls = load_strategy(settings.strategy.name)
    code_version = __version__
    fingerprint = strategy_fingerprint(strategy_cls, settings.strategy.params, code_version)
    db_path = settings.database_path
    store = RunStore(db_path)
    if (
        settings.profile == "prod"
        and settings.is_live
        and not has_promotion(store, fingerprint, "prod")
    ):
        store.close()
        raise PromotionMissing(
            f"prod refuses strategy {settings.strategy.name!r} (fingerprint {fingerprint}): "
            "no promotion to prod recorded; run `perps-bot promote --to prod --run <canary run>`"
        )

    run_id = new_run_id(settings.profile)
    run_kind = kind or settings.run_kind
    simulated = (
        feed.simulated if feed is not None else (settings.broker.kind == "mock" and run.dev_fast)
    )
    start_ms = _start_ms(settings)
    duration = run.duration_ms
    end_ms = start_ms + duration if duration is not None and simulated and feed is None else None
    if feed is None or venue is None:
        built_feed, built_venue = _build_feed_and_venue(settings, start_ms, end_ms)
        feed = feed or built_feed
        venue = venue or built_venue

    counter = setup_logging(
        Path(run.log_dir),
        run.log_level,
        max_bytes=settings.logging.max_bytes,
        backups=settings.logging.backups,
        run_id=run_id,
        file_name=log_file_name(run_kind),
    )
    events = "events.backtest.jsonl" if run_kind == "backtest" else "events.jsonl"
    journal = Journal(Path(run.log_dir) / events, run_id)
    ledger = Ledger(settings.account, debug_invariants=run.debug_invariants)
    strategy_logger = logging.getLogger(f"perps_bot.strategy.{settings.strategy.name}")
    ctx = StrategyContext(
        symbols=list(run.symbols),
        account=ledger,
        order_size=settings.strategy.size_for,
        logger=strategy_logger,
    )
    strategy = strategy_cls(settings.strategy.params, ctx)
    risk = RiskGate(settings.risk, ledger, ledger.margin_required)
    clock: Clock = SimulatedClock(start_ms) if simulated else WallClock()

    params_json = json.dumps(strategy.params.model_dump(mode="json"), sort_keys=True)
    store.create_run(
        RunRecord(
            run_id=run_id,
            profile=settings.profile,
            kind=run_kind,
            seed=run.seed,
            config_hash=settings.config_hash(),
            config_json=json.dumps(settings.masked_dict(), sort_keys=True),
            strategy=settings.strategy.name,
            strategy_params=params_json,
            strategy_fingerprint=fingerprint,
            code_version=code_version,
            symbols=json.dumps(list(run.symbols)),
            initial_balance=settings.account.initial_balance,
            created_at=int(time.time() * 1000),
            start_ts=None,
            end_ts=None,
            status="running",
            error_lines=0,
            warning_lines=0,
            detail=None,
        )
    )
    live_view = progress and run.live_view and console.is_terminal
    view = LiveView(console, title=f"perps-bot {settings.profile} {run_kind}", enabled=live_view)
    rec = Recorder(
        run_id=run_id,
        store=store,
        journal=journal,
        view=view,
        ledger=ledger,
        logger=log,
        watched=live_view or run.http_port is not None,
    )
    orchestrator = Orchestrator(
        feed=feed,
        venue=venue,
        strategy=strategy,
        risk=risk,
        ledger=ledger,
        recorder=rec,
        clock=clock,
        equity_interval_ms=parse_duration(run.equity_interval),
        log_equity_interval_ms=parse_duration(run.log_equity_interval),
        bar_timeframe_ms=parse_duration(settings.strategy.timeframe),
        end_ms=end_ms,
        client_prefix=f"pb{run_id[-6:]}x" if settings.is_live else "pb-",
        poll_interval_ms=parse_duration(settings.exchange.poll_interval),
        durable_fills=not simulated,
        candle_bar_ms=_strategy_bar_ms(feed, settings),
    )
    log.info(
        "run %s start: profile=%s kind=%s seed=%d strategy=%s params=%s fingerprint=%s",
        run_id,
        settings.profile,
        run_kind,
        run.seed,
        settings.strategy.name,
        params_json,
        fingerprint,
    )
    journal.write(
        "run_start",
        start_ms,
        {
            "profile": settings.profile,
            "kind": run_kind,
            "seed": run.seed,
            "strategy": settings.strategy.name,
            "fingerprint": fingerprint,
        },
    )
    http = _status_server(settings, run_id, rec, risk)
    status = "completed"
    detail: str | None = None
    wall_timer: asyncio.TimerHandle | None = None
    try:
        with _interrupts(orchestrator), _collector_tuned(), view:
            if http is not None:
                await http.start()
            if not simulated and duration is not None:
                wall_timer = asyncio.get_running_loop().call_later(
                    duration / 1000.0, orchestrator.request_stop, "duration reached"
                )
            if settings.broker.kind == "ccxt" and not run.dry_run:
                await orchestrator.start(reconcile=True)
                store.set_initial_balance(run_id, ledger.initial_balance())
            await orchestrator.run()
        if orchestrator.stop_reason == "interrupted":
            status = "interrupted"
    except StopRun as exc:
        status, detail = "failed", str(exc)
    except (KeyboardInterrupt, asyncio.CancelledError):
        status, detail = "interrupted", "aborted"
        raise
    except Exception as exc:
        status, detail = "failed", f"{type(exc).__name__}: {exc}"
        log.exception("run %s failed", run_id)
        raise
    finally:
        if wall_timer is not None:
            wall_timer.cancel()
        if http is not None:
            await http.stop()
        first = orchestrator.first_ts
        last = orchestrator.last_ts
        log.info("run %s end (%s) | %s", run_id, status, rec.pnl())
        journal.write("run_end", last or start_ms, {"status": status, "detail": detail})
        rec.flush()
        store.finish_run(
            run_id,
            status=status,
            start_ts=first,
            end_ts=last,
            error_lines=counter.errors,
            warning_lines=counter.warnings,
            detail=detail,
        )
        journal.close()
        summary = headline(store, run_id)
        store.close()
        close_logging()
    return RunResult(
        run_id=run_id,
        status=status,
        db_path=db_path,
        fills=rec.fills,
        final_equity=ledger.equity(),
        headline=summary,
    )


def run_bot_sync(
    settings: Settings,
    *,
    feed: Feed | None = None,
    venue: Venue | None = None,
    kind: str | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> RunResult:
    """Blocking wrapper for the CLI and tests (PERPS_BOT_DEBUG_ASYNCIO=1: asyncio debug)."""
    return asyncio.run(
        run_bot(settings, feed=feed, venue=venue, kind=kind, progress=progress, console=console),
        debug=bool(os.environ.get("PERPS_BOT_DEBUG_ASYNCIO")),
    )
