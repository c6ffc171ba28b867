"""Delivery of alerts off the trading path (SPEC 12): `AlertSender` (see
monitoring.alerts for what the alerts are).

`send` only checks the rate limit and puts the message on a queue; one background
thread delivers them. It is called from any thread (the ERROR log handler runs on
whichever thread logs), so the rate window and the drop counts are changed under one
lock: without it, two threads passed the limit together and a drop counted between
the summing up and the clearing was lost.

A message a target refused (or failed) is tried again after the pauses of `RETRY_S`
(a receiver restarting). The end of a run (`close`) cuts those pauses short: what is
still queued gets its tries at once and the end waits no longer than they take (at
most `alerts.flush_timeout`, for a target that does not answer); every alert never
delivered is written in the run log, title and text, at WARNING.

The keys of the accepted alerts are appended to `alerts.sent` (a resumed run does not
send them again: monitoring.alerts); only the latest `SENT_KEEP` matter (the ones sent
since a run's last checkpoint), so the file is cut back to them as it grows.
"""

import contextlib
import logging
import os
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger("perps_bot.alerts")

#: delivers one message (title, body) to one target; True when it was accepted
Deliver = Callable[[str, str], bool]
_QUEUE_SIZE = 256
#: events that come once per halt, position, day, run or outage: past the rate limit too
ALWAYS_SENT = frozenset(
    {"halt", "liquidation", "daily_summary", "run_end", "exchange", "reconcile"}
)
#: the keys of the alerts a target accepted, one a line, beside the run's journal
SENT_LOG = "alerts.sent"
#: the sent log keeps at least the latest this many keys, and at most twice as many
SENT_KEEP = 1_000
#: the pauses (seconds) before a message a target did not accept is tried again
RETRY_S = (2.0, 10.0)

_Item = tuple[str, str, str | None]
_file_locks: dict[Path, threading.Lock] = {}  # one per sent log: senders of one process
_file_locks_guard = threading.Lock()


def sent_keys(path: Path) -> set[str]:
    """The keys `AlertSender` logged in `path` (none yet: empty)."""
    try:
        return set(path.read_text(encoding="utf-8").split())
    except FileNotFoundError:
        return set()
    except OSError as exc:  # unreadable: a replayed alert may go out twice, never lost
        log.warning("alerts: cannot read %s (%s): a replayed alert may be sent again",
                    path.name, exc.strerror)  # fmt: skip
        return set()


class AlertSender:
    """Rate-limited, queued delivery to some targets on one background thread."""

    def __init__(
        self,
        targets: Sequence[tuple[str, Deliver]],
        *,
        max_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        sent_log: Path | None = None,
        retry_s: Sequence[float] = RETRY_S,
        pause: Callable[[float], object] | None = None,
    ) -> None:
        """`targets`: (masked name, deliver) pairs; `clock`: wall seconds (monotonic);
        `sent_log`: where the keys of the alerts a target accepted are appended;
        `retry_s`: the pauses (`pause`, on the sender's thread; by default a wait the
        end of the run cuts short) before each new try of a message a target did not
        accept."""
        self._targets = list(targets)
        self._retry_s = tuple(retry_s)
        self._ending = threading.Event()  # close() began: no more pauses
        self._pause = pause or self._ending.wait
        self._down: set[int] = set()  # the targets (index) that failed their last message
        self._sent_log = sent_log
        self._logged = 0  # keys this sender logged: the log is cut back every SENT_KEEP
        self._limit = max_per_minute
        self._clock = clock
        self._lock = threading.Lock()  # the rate window and `dropped`: see the module doc
        self._sent_at: deque[float] = deque()
        self.dropped: Counter[str] = Counter()
        self.sent = 0
        self.failed = 0
        self._closed = False
        self._current: _Item | None = None  # the message being delivered
        self._queue: queue.Queue[_Item | None] = queue.Queue(_QUEUE_SIZE)
        self._thread = threading.Thread(target=self._work, name="perps-bot-alerts", daemon=True)
        self._thread.start()

    def send(self, event: str, title: str, body: str, key: str | None = None) -> bool:
        """Queue a message unless the rate limit (not for `ALWAYS_SENT`) or a full queue
        drops it (counted). `key`: logged once a target accepted the message."""
        with self._lock:
            now = self._clock()
            while self._sent_at and now - self._sent_at[0] >= 60.0:
                self._sent_at.popleft()
            if len(self._sent_at) >= self._limit and event not in ALWAYS_SENT:
                self.dropped[event] += 1
                return False
            if self.dropped:
                body = f"{body}\n({_dropped_text(self.dropped)})"
            try:
                self._queue.put_nowait((title, body, key))
            except queue.Full:  # the targets are far behind: this one is dropped too
                self.dropped[event] += 1
                return False
            self.dropped.clear()  # summed up in the message queued
            self._sent_at.append(now)
            return True

    def close(self, timeout_s: float) -> bool:
        """Send a last summary of what was dropped, give what is queued its tries at
        once (no more pauses) and wait for them at most `timeout_s`; True when
        everything queued was delivered or given up on (each one given up on, and each
        one still waiting when `timeout_s` passed, is in the run log)."""
        with self._lock:
            if self.dropped:
                with contextlib.suppress(queue.Full):
                    self._queue.put_nowait(
                        ("perps-bot: alerts dropped", _dropped_text(self.dropped), None)
                    )
                    self.dropped.clear()
        self._ending.set()
        with contextlib.suppress(queue.Full):  # full: the thread ends once it is empty
            self._queue.put_nowait(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            with self._queue.mutex:
                waiting = [m for m in (self._current, *self._queue.queue) if m is not None]
            for title, body, _ in waiting:
                log.warning("alert not delivered within %.1fs (a target does not answer):"
                            " %s: %s", timeout_s, title, body)  # fmt: skip
        self._closed = True  # the run's log is closed next: a late failure goes unlogged
        return not self._thread.is_alive()

    def _work(self) -> None:
        while not (self._ending.is_set() and self._queue.empty()):
            item = self._queue.get()
            if item is None:
                break
            self._current = item
            title, body, key = item
            accepted = False
            for index, (name, deliver) in enumerate(self._targets):
                retries = () if index in self._down else self._retry_s
                why = self._deliver(deliver, title, body, retries)
                if why is None:
                    self.sent += 1
                    self._down.discard(index)
                    accepted = True
                    continue
                self.failed += 1
                self._down.add(index)
                if not self._closed:  # written down: which alert the target never got
                    log.warning("alert to %s not sent (%s, %d tries): %s: %s", name, why,
                                len(retries) + 1, title, body)  # fmt: skip
            if accepted and key is not None:
                self._log_sent(key)
            self._current = None

    def _deliver(
        self, deliver: Deliver, title: str, body: str, retries: Sequence[float]
    ) -> str | None:
        """Try the message on one target, again after each pause of `retries` (a receiver
        restarting; none once the run is ending); None once accepted, else why the last
        try failed. A target that failed every try of its last message gets one try per
        message until it accepts one: the pauses would hold the messages queued behind
        (a halt) for minutes."""
        why = ""
        for pause in (0.0, *retries):
            if pause and not self._ending.is_set():
                self._pause(pause)
            try:
                if deliver(title, body):
                    return None
                why = "not accepted"
            except Exception as exc:  # a target's failure is never the run's
                why = f"failed: {type(exc).__name__}"
        return why

    def _log_sent(self, key: str) -> None:
        """Append `key` to the sent log at once (closed: a kill right after keeps it),
        cut back to the latest SENT_KEEP keys at the first and every SENT_KEEP-th."""
        path = self._sent_log
        if path is None:
            return
        try:
            with _file_lock(path):
                with path.open("a", encoding="utf-8") as fh:
                    fh.write(key + "\n")
                if self._logged % SENT_KEEP == 0:
                    _keep_latest(path, SENT_KEEP)
                self._logged += 1
        except OSError as exc:
            if not self._closed:
                log.warning("alerts: cannot write %s (%s): a resumed run may send an alert"
                            " again", path.name, exc.strerror)  # fmt: skip
            self._sent_log = None  # said once; the alerts go on


def _file_lock(path: Path) -> threading.Lock:
    with _file_locks_guard:
        return _file_locks.setdefault(path.absolute(), threading.Lock())


def _keep_latest(path: Path, keep: int) -> None:
    """Cut the log at `path` back to its last `keep` lines (replaced whole: a kill
    midway leaves the old file or the new one)."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if len(lines) <= keep:
        return
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.writelines(lines[-keep:])
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _dropped_text(dropped: Counter[str]) -> str:
    parts = ", ".join(f"{n} {event}" for event, n in sorted(dropped.items()))
    return f"{sum(dropped.values())} alerts dropped by the rate limit: {parts}"
