"""The run proper, between its wiring (orchestrator.wiring) and its end
(orchestrator.runner): the wall-clock duration and the exchange's outages followed
alongside, a live run's start (the venue, the fills earlier runs never stored, the
reconciliation with the account), a resumed dry run's funding while it was down, then
the orchestrator's loop.
"""

import asyncio
import contextlib
import logging

from perps_bot.domain import RunMode
from perps_bot.monitoring import LOGGER_NAME
from perps_bot.monitoring.logs import hosted_run
from perps_bot.monitoring.text_process import lines_behind
from perps_bot.orchestrator.downtime import charge_downtime_funding
from perps_bot.orchestrator.outage import follow_outage
from perps_bot.orchestrator.recovery import recover_unstored_fills
from perps_bot.orchestrator.wiring import Run

log = logging.getLogger("perps_bot.run")

#: events from which a run's writer process is started at its first frame of lines: its
#: start is paid back well before the end (a 30k-candle backtest ran as fast either way,
#: a 15k one 4% slower)
LONG_RUN_EVENTS = 50_000


async def trade(run: Run) -> None:
    """The run proper: the wall-clock duration, the live start (venue, recovery,
    reconciliation), then the orchestrator's loop."""
    settings, orchestrator, store = run.settings, run.orchestrator, run.store
    wall_timer: asyncio.TimerHandle | None = None
    duration = settings.run.duration_ms
    outages: asyncio.Task[None] | None = None
    try:
        if not run.simulated:  # an exchange that stops answering is said once, not per call
            outages = asyncio.create_task(follow_outage(orchestrator, run.journal,
                                                        settings.risk.stale_after))  # fmt: skip
        if not run.simulated and duration is not None:
            done = (orchestrator.last_ts or 0) - (orchestrator.first_ts or 0)  # resumed
            wall_timer = asyncio.get_running_loop().call_later(
                max(duration - done, 0) / 1000.0, orchestrator.request_stop, "duration reached"
            )
        if run.preflight.spec.reconciles:
            await orchestrator.start()
            await _recover_after_crash(run)
            await orchestrator.reconcile("start")
            # what earlier runs' orders executed until the account was taken (whole,
            # handing out none of it) is theirs: looked up again now; what an order
            # found open executed after it is this run's (recovery `_up_to_the_start`)
            await _recover_after_crash(run)
            for p in orchestrator.portfolios:
                store.set_initial_balance(p.rec.run_id, p.ledger.initial_balance())
            store.set_initial_balance(run.run_id, run.ledger.initial_balance())
            if run.capture is not None:  # its replay trades it, even if the run crashes
                run.capture.note(initial_balance=run.ledger.initial_balance())
        elif run.resumed_from is not None and run.preflight.mode is RunMode.DRY_RUN:
            await _charge_downtime(run)
        with _lines_written_behind(run):
            await orchestrator.run()
    finally:
        if wall_timer is not None:
            wall_timer.cancel()
        if outages is not None:
            outages.cancel()


def _lines_written_behind(run: Run) -> contextlib.AbstractContextManager[None]:
    """A backtest's loop has its run-log and journal lines written by a process
    (monitoring.text_process); a process hosting several runs shares its log files
    between them: its runs write their own."""
    if not run.preflight.spec.writes_behind or hosted_run() is not None:
        return contextlib.nullcontext()
    recorders = {id(r): r for r in (run.recorder, *(p.rec for p in run.orchestrator.portfolios))}
    hot_logs = [r.hot_log for r in recorders.values()]
    _, events = run.orchestrator.feed.progress()  # a backtest's candles, known ahead
    long_run = events is not None and events >= LONG_RUN_EVENTS
    return lines_behind(hot_logs, logging.getLogger(LOGGER_NAME), run.journal, long_run=long_run)


async def _recover_after_crash(run: Run) -> None:
    """Live: book the fills earlier runs never stored before this run trades (recovery)."""
    from perps_bot.venues.live import LiveVenue  # ccxt only where there is a live venue

    venue = run.orchestrator.venue
    if not isinstance(venue, LiveVenue):
        return
    booked = await recover_unstored_fills(
        run.store, venue, run.settings, run.preflight.instruments, run.run_id
    )
    if booked:
        log.warning("%d fills of earlier runs recovered from the exchange", booked)


async def _charge_downtime(run: Run) -> None:
    """A resumed dry run: the funding settled while it was down (orchestrator.downtime)."""
    orchestrator, pre = run.orchestrator, run.preflight
    since = orchestrator.last_ts
    if since is None or pre.public_client is None:  # resumed from its start: nothing held
        return
    symbols = {name: i.exchange_symbol for name, i in pre.instruments.items()}
    await charge_downtime_funding(pre.public_client, run.settings.exchange,
                                  orchestrator.portfolios, symbols, since,
                                  orchestrator.clock.now())  # fmt: skip
