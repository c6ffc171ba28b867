"""Running the bot: preflight (checks, nothing written), wiring (orchestrator.wiring,
from the table of modes), then execution (the trading itself: orchestrator.run_trading)
until the feed ends, the duration passes, or Ctrl-C / SIGTERM (the first one stops
cleanly with state flushed, a second aborts), and the run's end recorded.

Signals are handled from the very start, so a run still waiting for an exchange that
does not answer stops on SIGTERM like on Ctrl-C (the handlers and the garbage
collector's settings, which belong to the process: orchestrator.run_process).

A run can be hosted in a process that runs several (the session server: `hosted=True`):
that process owns the database lock (and found the crashed runs when it took it), a
live run's account lock, the signals, the log file and the garbage collector's
settings; each run only tags and counts its own log lines, and is its own paper account
(its trading state lives in its checkpoints, not in the profile's `trading_state` rows
other sessions would share).

A caller that shows the run while it executes (the `--http-port` dashboard, a session
of the server) passes `attach`: it is handed the wired run and entered for as long as
the run executes.
"""

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from perps_bot.config import Settings
from perps_bot.domain import portfolio_run_id
from perps_bot.feeds import Feed
from perps_bot.metrics.report import Report, build_report, headline_text
from perps_bot.monitoring import (
    close_logging,
    hosted_run_log,
    log_file_name,
    quiet_logging,
    setup_logging,
)
from perps_bot.monitoring.logs import LineCounter
from perps_bot.orchestrator.account_hold import hold_account
from perps_bot.orchestrator.engine import Orchestrator
from perps_bot.orchestrator.preflight import PromotionMissing, preflight
from perps_bot.orchestrator.run_process import (
    INTERRUPTED,
    collector_tuned,
    run_coroutine,
    signals_handled,
)
from perps_bot.orchestrator.run_trading import trade
from perps_bot.orchestrator.venue_calls import StopRun
from perps_bot.orchestrator.wiring import Run, build_run, metrics_only, new_run_id
from perps_bot.storage import durable
from perps_bot.storage.lock import DatabaseLock
from perps_bot.venues import Venue

__all__ = [
    "Attach",
    "Interrupted",
    "PromotionMissing",
    "Run",
    "RunResult",
    "new_run_id",
    "run_bot",
    "run_bot_sync",
]

log = logging.getLogger("perps_bot.run")


#: a caller's view of the run while it executes (see the module doc)
Attach = Callable[[Run], AbstractAsyncContextManager[object]]


class Interrupted(Exception):
    """Ctrl-C or SIGTERM before the run started: nothing was written."""


@dataclass(frozen=True, slots=True)
class _Options:
    """How run_bot was asked to run (see its docstring)."""

    feed: Feed | None
    venue: Venue | None
    progress: bool
    console: Console
    resume: str | None
    attach: Attach | None
    hosted: bool
    after_batch: "Callable[[Orchestrator], None] | None"


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: str
    status: str
    db_path: Path
    fills: int
    final_equity: float
    headline: str
    #: the run's report as it ended (an optimisation trial reads its metrics here)
    report: Report | None = None
    #: why a failed run stopped (one line), None otherwise
    detail: str | None = None


async def run_bot(
    settings: Settings,
    *,
    feed: Feed | None = None,
    venue: Venue | None = None,
    progress: bool = True,
    console: Console | None = None,
    resume: str | None = None,
    attach: Attach | None = None,
    hosted: bool = False,
    after_batch: "Callable[[Orchestrator], None] | None" = None,
) -> RunResult:
    """Run the bot described by `settings` until the feed ends, the duration passes or
    Ctrl-C / SIGTERM; return what happened. Raises a PerpsBotError (one-line message,
    nothing written) when a preflight check fails or another bot holds the database,
    Interrupted when stopped before the run started. `resume` ('latest' or a run id)
    continues a paper run from its last checkpoint under its own run id. `attach` and
    `hosted`: see the module doc (a hosted run is stopped by cancelling its task before
    it is wired, by `request_stop` on its orchestrator after). `after_batch` sees the
    orchestrator between batches of a run that takes no checkpoints (an optimisation
    trial stops a hopeless run there with `request_stop`)."""
    options = _Options(feed, venue, progress, console or Console(stderr=False), resume,
                       attach, hosted, after_batch)  # fmt: skip
    if hosted:  # the hosting process holds the database lock and set the log up
        with hosted_run_log() as counter:
            return await _start_and_execute(settings, counter, options)
    if metrics_only(settings):  # an in-memory store: nothing to lock, no log file
        try:
            return await _start_and_execute(settings, quiet_logging(), options)
        finally:
            close_logging()
    # one bot writes a database, and one trades an exchange account, at a time: a second
    # one is refused before it writes anything, its log lines included (the kernel frees
    # the locks when we exit)
    with DatabaseLock(settings.database_path), hold_account(settings) or contextlib.nullcontext():
        run_cfg = settings.run
        counter = setup_logging(
            Path(run_cfg.log_dir),
            run_cfg.log_level,
            max_bytes=settings.logging.max_bytes,
            backups=settings.logging.backups,
            file_name=log_file_name(str(settings.mode)),
        )
        try:
            return await _start_and_execute(settings, counter, options)
        finally:
            close_logging()


async def _start_and_execute(
    settings: Settings, counter: LineCounter, options: _Options
) -> RunResult:
    console = options.console
    async with signals_handled(install=not options.hosted) as signals:
        try:
            pre = await preflight(settings, say=lambda text: console.print(text, highlight=False))
        except asyncio.CancelledError:
            raise Interrupted("interrupted while starting") from None
        try:
            run = await build_run(settings, pre, counter, feed=options.feed, venue=options.venue,
                            console=console, progress=options.progress,
                            resume=options.resume, hosted=options.hosted)  # fmt: skip
        except BaseException:
            await pre.close()
            raise
        for keeper in run.trading_state:  # a run that starts halted says so, not only in the log
            if keeper.restored is not None:
                console.print(keeper.restored, highlight=False, markup=False, soft_wrap=True)
        signals.orchestrator = run.orchestrator
        after_batch = options.after_batch
        if after_batch is not None and run.orchestrator.after_batch is None:
            orchestrator = run.orchestrator
            orchestrator.after_batch = lambda: after_batch(orchestrator)
        return await _execute(run, options)


def _journal_start(run: Run) -> None:
    """The run's first line in the log and the journal: what runs, with what."""
    settings, planned = run.settings, run.preflight.portfolios
    strategy = " + ".join(p.plan.strategy for p in planned)
    fingerprint = run.preflight.fingerprint if len(planned) == 1 else "portfolios"
    log.info(
        "run %s start: profile=%s kind=%s seed=%d strategy=%s params=%s fingerprint=%s",
        run.run_id,
        settings.profile,
        run.preflight.mode,
        settings.run.seed,
        strategy,
        run.params_json,
        fingerprint,
    )
    started = {
        "profile": settings.profile,
        "kind": str(run.preflight.mode),
        "seed": settings.run.seed,
        "strategy": strategy,
        "fingerprint": fingerprint,
        "resumed_from": run.resumed_from,
    }
    if len(planned) > 1:
        started["portfolios"] = {
            p.plan.id: {"strategy": p.plan.strategy,
                        "run_id": portfolio_run_id(run.run_id, p.plan.id, several=True),
                        "capital": p.plan.capital, "symbols": list(p.plan.symbols)}
            for p in planned
        }  # fmt: skip
    run.journal.write("run_start", run.orchestrator.last_ts or run.start_ms, started)


async def _execute(run: Run, options: _Options) -> RunResult:
    orchestrator = run.orchestrator
    status, detail = "completed", None
    attached = contextlib.AsyncExitStack()
    try:
        _journal_start(run)  # a full disk fails the run here: it still ends and closes
        gc_tuned = contextlib.nullcontext() if options.hosted else collector_tuned()
        with gc_tuned, run.recorder.view:
            if options.attach is not None:
                await attached.enter_async_context(options.attach(run))
            if not orchestrator.stop_requested:  # stopped while it was made: no trading
                await trade(run)
            if not orchestrator.interrupted:
                run.recorder.view.complete()
        if orchestrator.interrupted:  # its detail says who, unless Ctrl-C / SIGTERM did
            reason = orchestrator.stop_reason
            status, detail = "interrupted", None if reason == INTERRUPTED else reason
    except StopRun as exc:
        status, detail = "failed", str(exc)
    except (KeyboardInterrupt, asyncio.CancelledError):
        status, detail = "interrupted", "aborted"
        raise
    except Exception as exc:
        status, detail = "failed", f"{type(exc).__name__}: {exc}"
        log.exception("run %s failed", run.run_id)
        raise
    finally:
        with contextlib.suppress(Exception):
            await attached.aclose()
        with contextlib.suppress(Exception):
            await orchestrator.close()  # already closed unless the run failed early
        if options.feed is not None:  # its caller's feed did not take preflight's client over
            await run.preflight.close()
        report = _finish(run, status, detail)
        if run.watchers is not None:  # the run_end alert among them
            await run.watchers.close_alerts()
    return RunResult(
        run_id=run.run_id,
        status=status,
        db_path=run.settings.database_path,
        fills=sum(p.rec.fills for p in orchestrator.portfolios),
        final_equity=run.ledger.equity(),
        headline=headline_text(report),
        report=report,
        detail=detail if status == "failed" else None,
    )


def _finish(run: Run, status: str, detail: str | None) -> Report:
    """Record the end of the run (journal, rows, trading state, status) and close the
    store; returns the run's report."""
    rec, orchestrator, store, journal = run.recorder, run.orchestrator, run.store, run.journal
    resumable = run.preflight.spec.resumable and status != "completed"
    for p in orchestrator.portfolios:  # flip entries waiting for their close
        p.flow.held.left_at_end(resumable)
    log.info("run %s end (%s) | %s", run.run_id, status, rec.pnl())
    if run.capture is not None:
        run.capture.close(initial_balance=run.ledger.initial_balance())
    last = orchestrator.last_ts
    end = {"status": status, "detail": detail, "equity": run.ledger.equity()}
    journal.write("run_end", last or run.start_ms, end)
    rec.flush()
    for keeper in run.trading_state:
        keeper.save()
    # a portfolio's run: the lines about it and those about no portfolio (the venue's)
    portfolio_of = {p.rec.run_id: p.id for p in orchestrator.portfolios}
    for run_id in (*run.child_run_ids, run.run_id):
        errors, warnings = run.counter.lines(
            portfolio_of.get(run_id) if run_id != run.run_id else None
        )
        store.finish_run(
            run_id,
            status=status,
            start_ts=orchestrator.first_ts,
            end_ts=last,
            error_lines=errors,
            warning_lines=warnings,
            detail=detail or (run.resumed_from and f"resumed from {run.resumed_from}"),
        )
        if status == "completed":  # nothing left to resume
            with store.transaction():
                durable.drop_checkpoint(store.connection, run_id)
    journal.close()
    if run.watchers is not None:
        run.watchers.close()
    report = build_report(store, run.run_id)
    store.close()
    return report


def run_bot_sync(
    settings: Settings,
    *,
    feed: Feed | None = None,
    venue: Venue | None = None,
    progress: bool = True,
    console: Console | None = None,
    resume: str | None = None,
    attach: Attach | None = None,
) -> RunResult:
    """Blocking wrapper for the CLI and tests (PERPS_BOT_DEBUG_ASYNCIO=1: asyncio debug)."""
    try:
        return run_coroutine(
            run_bot(
                settings,
                feed=feed,
                venue=venue,
                progress=progress,
                console=console,
                resume=resume,
                attach=attach,
            ),
            debug=bool(os.environ.get("PERPS_BOT_DEBUG_ASYNCIO")),
        )
    except asyncio.CancelledError:  # a second Ctrl-C / SIGTERM: aborted, state flushed
        raise Interrupted("aborted") from None
