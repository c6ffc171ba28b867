"""Alerts through apprise (SPEC 12): Telegram, Discord, Slack, email, json:// webhooks.

`AlertRules` is a journal listener: it turns the lines of the events named in
`alerts.on` (trade_closed, halt, liquidation, run_end, daily_summary) into messages;
`AlertLogHandler` does the same for ERROR log lines (`error`), under which also go
an exchange outage's begin and end (`venue` lines: orchestrator.outage) and a
reconciliation mid-run that found the account differing from the books, one
portfolio or several (`reconcile` lines). Both hand them to an
`AlertSender` (monitoring.alert_sender), which is off the trading path: `send` only
checks the rate limit and puts the message on a queue; one background thread delivers
them. A target that is slow or never answers holds that thread, never an order; the
end of a run waits for what is queued at most `alerts.flush_timeout`, and no longer
than its last tries take. A message a target refused (or failed) is tried again after
the pauses of `RETRY_S` (a receiver restarting); one never delivered is written in the
run log, title and text, at WARNING.

Once only (SPEC 9): a paper run killed after an alert went out but before the
checkpoint that ends its batch replays that batch when resumed, and the alert's event
with it. Each alert of the run's events is keyed by its run, time, event and text (a
replay makes them again byte for byte); once a target accepted it, the sender appends
the key to a log beside the journal (`alerts.sent`, cut back to its latest keys). A
resumed run reads that log and sends no alert whose key it holds; one that was queued
but not delivered when the run was killed has no key there, and goes out when the
replay makes it again.

Rate limit: at most `alerts.max_per_minute` messages in any 60 s of wall time; the
ones over it are counted by event and summed up in the next message that goes out
(and in a last message when the run ends). The rare events (`ALWAYS_SENT`: a halt, a
liquidation, a day's summary, the run's end) are never dropped by it: a burst of
closed trades would otherwise leave a run's halt and end as mere counts. URLs are
secrets: whatever is logged about a target names it by `mask_url` (scheme only);
apprise's own logger, which names hosts and ids, is kept out of the run log.
"""

import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from perps_bot.config import AlertsConfig, mask_url
from perps_bot.config.alerts import load_apprise
from perps_bot.domain import ACCOUNT, DAY_MS, iso_utc, parse_duration
from perps_bot.monitoring.alert_sender import (
    ALWAYS_SENT,
    RETRY_S,
    SENT_KEEP,
    SENT_LOG,
    AlertSender,
    Deliver,
    sent_keys,
)
from perps_bot.monitoring.logs import LOGGER_NAME, hosted_run, logged_by

__all__ = [
    "ALWAYS_SENT",
    "RETRY_S",
    "SENT_KEEP",
    "SENT_LOG",
    "AlertLogHandler",
    "AlertRules",
    "AlertSender",
    "Alerts",
    "Deliver",
    "alert_key",
    "apprise_target",
    "sent_keys",
]

log = logging.getLogger("perps_bot.alerts")
#: the alerts sent when `alerts.on` holds another event: what impairs trading is an error
_GATED_BY = {"exchange": "error", "reconcile": "error"}


def alert_key(event: str, line: dict[str, Any], body: str) -> str:
    """The key of the alert `body` of `event` made from journal line `line`: the same
    for the line a resumed run's replay makes again."""
    raw = f"{line['run_id']}\x1f{line['ts']}\x1f{event}\x1f{body}".encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def apprise_target(url: str) -> Deliver:
    """A deliver function for one apprise URL (apprise is imported only when used).
    Without a service timeout apprise delivers on the calling thread (the sender's, a
    daemon); with one it hands the call to its own worker threads, which the process
    joins when it exits: a target that never answers then held the bot's exit until its
    socket timed out, long after the run's `flush_timeout`."""
    apprise = load_apprise()
    target = apprise.Apprise(asset=apprise.AppriseAsset(service_timeout=0))
    if not target.add(url):
        raise ValueError(f"not an apprise URL: {mask_url(url)}")

    def deliver(title: str, body: str) -> bool:
        return bool(target.notify(body=body, title=title))

    return deliver


class AlertRules:
    """A journal listener turning the run's lines into alerts of the events in `on`."""

    def __init__(
        self, sender: AlertSender, on: Sequence[str], *, name: str, sent: set[str] | None = None
    ) -> None:
        """`name`: how titles name the run, e.g. "perps-bot dev"; `sent`: the keys of the
        alerts sent before a resumed run's restart (its replay does not send them again)."""
        self._sender = sender
        self._sent = sent or set()
        self._on = frozenset(on)
        self._name = name
        self._day: int | None = None
        self._since: int | None = None  # the run (or its restart) began within the day
        self._trades = 0
        self._trade_pnl = 0.0
        self._equity: dict[str, float] = {}
        #: called when a daily summary is sent (a paper run: checkpoint the batch, so a
        #: resumed run does not send it again)
        self.on_summary: Callable[[], None] | None = None

    def state(self) -> tuple[Any, ...]:
        """The day summed up so far (a paper run's checkpoint keeps it: a resumed run
        sums up the whole day, its trades before the stop with the ones after)."""
        return self._day, self._since, self._trades, self._trade_pnl, dict(self._equity)

    def restore_state(self, state: tuple[Any, ...]) -> None:
        self._day, self._since, self._trades, self._trade_pnl, equity = state
        self._equity = dict(equity)

    def __call__(self, type_: str, line: dict[str, Any]) -> None:
        if "daily_summary" in self._on:
            self._daily(line)
        tag = f"[{line['portfolio']}] " if "portfolio" in line else ""
        if type_ == "trade_closed":
            self._trades += 1
            self._trade_pnl += line["net_pnl"]
            self._alert("trade_closed", "trade closed", tag + _trade_text(line), line)
        elif type_ == "state_change" and line["state"] == "HALTED" and not line.get("replayed"):
            self._alert("halt", "HALTED", f"{tag}trading halted: {line['detail']}", line)
        elif type_ == "liquidation":
            side, size, symbol = line["side"], line["size"], line["symbol"]
            text = f"{tag}{symbol} {side} {size:.6g} @ {line['price']:.6g} (forced close)"
            self._alert("liquidation", "LIQUIDATION", text, line)
        elif type_ == "venue":
            self._exchange(line)
        elif type_ == "reconcile" and line["why"] != "start":
            self._differed(line)
        elif type_ == "run_end":
            detail = f" ({line['detail']})" if line.get("detail") else ""
            equity = "" if line.get("equity") is None else f", equity {line['equity']:,.2f}"
            text = f"run {line['run_id']} ended: {line['status']}{detail}{equity}"
            self._alert("run_end", "run ended", text, line)

    def _exchange(self, line: dict[str, Any]) -> None:
        """An exchange outage's begin or end (orchestrator.venue_calls: once each)."""
        if line["state"] == "unavailable":
            text = f"the exchange is not answering: {line['detail']}; no order goes out"
            self._alert("exchange", "exchange down", f"{text} until it answers again", line)
        else:
            text = f"the exchange is answering again after {line['down_ms'] / 1e3:.0f} s"
            self._alert("exchange", "exchange back", text, line)

    def _differed(self, line: dict[str, Any]) -> None:
        """A reconciliation mid-run that found the exchange's account differing from the
        books (the start's adopts what an earlier run left): what it booked or adopted,
        one portfolio or several (one that cannot be attributed halts: alerted too)."""
        parts = []
        if line["booked_fills"]:
            parts.append(f"booked {line['booked_fills']} exchange fills no order of the bot"
                         " explains")  # fmt: skip
        for symbol in line["mismatched"]:
            theirs = line["positions"].get(symbol, [0.0])[0]
            owner = line["attributed"].get(symbol)
            to = f"adopted by {owner}" if owner else "cannot be attributed: halted"
            parts.append(f"{symbol} {line['before'][symbol]:+g} here, {theirs:+g} on the"
                         f" exchange ({to})")  # fmt: skip
        if parts:
            text = f"reconciliation ({line['why']}): {'; '.join(parts)}"
            self._alert("reconcile", "position differs", text, line)

    def crashed(self, run_ids: Sequence[str], *, found_by: str) -> None:
        """The run_end of runs whose process died (found `crashed` by the start of
        `found_by`: "run ID", "the session server"): sent once, as only the start that
        marks them finds them."""
        if run_ids and "run_end" in self._on:
            text = (f"run {', '.join(run_ids)} ended: crashed (its process is gone; found"
                    f" at the start of {found_by})")  # fmt: skip
            self._sender.send("run_end", f"{self._name}: run ended", text)

    def _alert(self, event: str, what: str, body: str, line: dict[str, Any]) -> None:
        """Send it, unless it was sent before the restart the run resumed from (a replay
        of `line`: see the module doc)."""
        if _GATED_BY.get(event, event) not in self._on:
            return
        key = alert_key(event, line, body)
        if key in self._sent:
            log.info("alert %s at %s sent before the restart: not sent again", event,
                     iso_utc(line["ts"]))  # fmt: skip
            return
        self._sender.send(event, f"{self._name}: {what}", body, key)

    def _daily(self, line: dict[str, Any]) -> None:
        """One summary when the run's clock passes midnight UTC (the day just over: its
        trades and the last equity of the day of the account and of each portfolio; the
        line that passes midnight belongs to the next day)."""
        day = line["ts"] // DAY_MS
        if self._day is not None and day > self._day:
            several = len(self._equity) > 1  # the account (no portfolio) is named then
            equity = ", ".join(
                f"{pid or ACCOUNT if several else pid} {value:,.2f}".lstrip()
                for pid, value in sorted(self._equity.items())
            )
            since = "" if self._since is None else f" (from {iso_utc(self._since)[11:16]} UTC)"
            text = (
                f"{iso_utc(self._day * DAY_MS)[:10]}{since}: {self._trades} trades closed,"
                f" net PnL {self._trade_pnl:,.2f}; equity {equity or 'n/a'}"
            )
            self._trades, self._trade_pnl, self._since = 0, 0.0, None
            self._alert("daily_summary", "daily summary", text, line)
            if self.on_summary is not None and "daily_summary" in self._on:
                self.on_summary()
        if self._day is None:  # a run started (or resumed) within the day saw part of it
            self._since = line["ts"] if line["ts"] % DAY_MS else None
        if self._day is None or day > self._day:
            self._day = day
        if line["type"] == "equity":
            self._equity[line.get("portfolio", "")] = line["equity"]


def _trade_text(line: dict[str, Any]) -> str:
    ret = line.get("return_pct")
    return (
        f"{line['symbol']} {line['side']} size={line['size']:.6g}"
        f" entry={line['entry_price']:.6g} exit={line['exit_price']:.6g}"
        f" net PnL={line['net_pnl']:.4f}"
        f" return={'n/a' if ret is None else f'{ret:+.3f}%'} reason={line['reason']}"
    )


class AlertLogHandler(logging.Handler):
    """ERROR log lines as `error` alerts (the message only, never a traceback). Made in
    the run's task: in a process hosting several runs (the session server), it takes
    only the lines of its own run, as the others have their own alerts and targets."""

    def __init__(self, sender: AlertSender, *, name: str) -> None:
        super().__init__(logging.ERROR)
        self._sender = sender
        self._name = name
        self._hosted = hosted_run()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == log.name or not logged_by(self._hosted):
            return  # the alerts' own trouble is not sent through themselves; another
            # hosted run's lines go to that run's alerts
        try:
            text = record.getMessage()
        except Exception:  # a malformed log call must not break the run
            text = str(record.msg)
        self._sender.send("error", f"{self._name}: error", text)


class Alerts:
    """The alerts of one run: the sender, the journal listener and the log handler."""

    def __init__(
        self,
        config: AlertsConfig,
        *,
        name: str,
        targets: Sequence[tuple[str, Deliver]] | None = None,
        sent_log: Path | None = None,
        resumed: bool = False,
        retry_s: Sequence[float] = RETRY_S,
    ) -> None:
        """`targets`: instead of the apprise targets of `config.urls` (tests);
        `retry_s`: the pauses before a message a target refused is tried again;
        `sent_log`: the log of the keys of the alerts sent (see the module doc), read
        when the run is `resumed`."""
        if targets is None:
            targets = [(mask_url(u.get_secret_value()), apprise_target(u.get_secret_value()))
                       for u in config.urls]  # fmt: skip
        _quiet_apprise()
        self.sender = AlertSender(targets, max_per_minute=config.max_per_minute,
                                  sent_log=sent_log, retry_s=retry_s)  # fmt: skip
        sent = sent_keys(sent_log) if resumed and sent_log is not None else None
        self.rules = AlertRules(self.sender, config.on, name=name, sent=sent)
        self._flush_s = parse_duration(config.flush_timeout) / 1000.0
        self._handler: AlertLogHandler | None = None
        if "error" in config.on:
            self._handler = AlertLogHandler(self.sender, name=name)
            logging.getLogger(LOGGER_NAME).addHandler(self._handler)

    def close(self) -> bool:
        if self._handler is not None:
            logging.getLogger(LOGGER_NAME).removeHandler(self._handler)
        return self.sender.close(self._flush_s)


def _quiet_apprise() -> None:
    """apprise logs hosts and ids of the targets: not into our logs, not on the console."""
    quiet = logging.getLogger("apprise")
    quiet.propagate = False
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
