"""What follows a run from outside the trading path: the Prometheus metrics of its
portfolios and the alerts (SPEC 11, 12). Both listen to the run's journal; the loop
knows nothing of them."""

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from perps_bot.config import AlertsConfig, Settings
from perps_bot.domain import ACCOUNT, RunMode
from perps_bot.monitoring import Journal
from perps_bot.monitoring.prometheus import RunMetrics
from perps_bot.orchestrator.portfolio import Portfolio

if TYPE_CHECKING:
    from perps_bot.monitoring.alerts import Alerts

log = logging.getLogger("perps_bot.alerts")
#: the alerted events a resumed run's replay would make again (a halt is stored and
#: checkpointed as it happens: orchestrator.trading_state)
_ONCE = frozenset({"trade_closed", "liquidation"})
#: runs over history are not followed (a backtest's year would be 365 daily summaries)
_SILENT = frozenset({RunMode.BACKTEST, RunMode.REPLAY})


@dataclass(slots=True)
class Watchers:
    metrics: RunMetrics
    alerts: "Alerts | None"

    def close(self) -> None:
        """The metrics keep the run's last values (the alerts: `close_alerts`)."""
        self.metrics.close()

    async def close_alerts(self) -> None:
        """Queued alerts get their last chance (at most alerts.flush_timeout), waited for
        on a thread: a process hosting several runs (the session server) goes on
        trading the others and answering requests meanwhile."""
        if self.alerts is not None:
            await asyncio.to_thread(self.alerts.close)


def watch_run(
    settings: Settings,
    mode: RunMode,
    run_id: str,
    journal: Journal,
    portfolios: list[Portfolio],
    checkpoint_soon: Callable[[], None] | None = None,
    resumed: bool = False,
    crashed: Sequence[str] = (),
) -> Watchers | None:
    """Metrics and alerts of a bot run; runs over history (backtests, replays, an
    optimizer's trials) have neither (None). `checkpoint_soon`: a paper run's request
    for a checkpoint at the end of the batch; the batch in which an alerted trade closes
    (or a liquidation) ends with one, so a resumed run does not replay (and alert again)
    what was alerted before it stopped; a kill before that checkpoint is covered by the
    log of the alerts sent beside the journal, which a `resumed` run reads
    (monitoring.alerts). `crashed`: the runs this start found left by a dead process
    (their run_end alert is this run's to send: nothing else ever sends it)."""
    if mode in _SILENT:
        return None
    multi = len(portfolios) > 1
    metrics = RunMetrics(settings.profile, run_id, ACCOUNT if multi else portfolios[0].id)
    for p in portfolios:
        metrics.watch(p.id, p.ledger, str(p.risk.state), p.symbols)
        p.rec.follow_trades()
    journal.subscribe(metrics)
    metrics.start()
    alerts = None
    if settings.alerts.urls:
        from perps_bot.monitoring.alerts import SENT_LOG, Alerts  # apprise: when alerts are on

        sent_log = Path(settings.run.log_dir) / SENT_LOG
        alerts = Alerts(settings.alerts, name=f"perps-bot {settings.profile}",
                        sent_log=sent_log, resumed=resumed)  # fmt: skip
        journal.subscribe(alerts.rules)
        alerts.rules.crashed(crashed, found_by=f"run {run_id}")
        if "run_end" not in settings.alerts.on:
            not_alerted(crashed, settings.alerts)
        alerted = _ONCE & set(settings.alerts.on)
        if checkpoint_soon is not None and alerted:
            soon = checkpoint_soon
            journal.subscribe(lambda type_, _: soon() if type_ in alerted else None)
        alerts.rules.on_summary = checkpoint_soon  # a day summed up is not replayed
    else:
        not_alerted(crashed)
    return Watchers(metrics, alerts)


def alert_crashed(
    config: AlertsConfig, crashed: Sequence[str], *, name: str, found_by: str
) -> "Alerts | None":
    """The run_end alerts of the runs a start outside any run (the session server's)
    found `crashed`, on their way; the caller closes what it returns (their last
    chance, at most alerts.flush_timeout). None when nothing is sent (said in the log)."""
    if not crashed or not config.urls or "run_end" not in config.on:
        not_alerted(crashed, config)
        return None
    from perps_bot.monitoring.alerts import Alerts  # apprise: when alerts are on

    alerts = Alerts(config.model_copy(update={"on": ["run_end"]}), name=name)
    alerts.rules.crashed(crashed, found_by=found_by)
    return alerts


def not_alerted(crashed: Sequence[str], config: AlertsConfig | None = None) -> None:
    """Runs found crashed whose run_end no alert carries: the run log says so (the
    marking's own WARNING does not say that nobody was told)."""
    if crashed:
        why = "alerts.on has no run_end" if config and config.urls else "alerts.urls is empty"
        log.warning("no alert sent for the crashed runs %s (%s)", ", ".join(crashed), why)
