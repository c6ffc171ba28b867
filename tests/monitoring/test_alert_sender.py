"""The alert sender under load and at the end of a run: senders on several threads
(the log handler runs on whichever thread logs) keep the rate limit and every count;
the log of the alerts sent stays bounded over a long run; a receiver that is down at
the end does not hold the run for the whole flush_timeout, and what it never got is
written in the run log."""

import itertools
import logging
import re
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from perps_bot.config import AlertsConfig
from perps_bot.monitoring.alerts import SENT_KEEP, Alerts, AlertSender, sent_keys


def _hammered(threads: int, each: int, limit: int) -> tuple[int, int]:
    """`threads` threads each sending `each` trade alerts as fast as they can, one
    simulated second a send: (how many were queued, how many the summaries counted)."""
    bodies: list[str] = []
    tick = itertools.count()
    sender = AlertSender([("x", lambda t, b: bodies.append(b) is None)],
                         max_per_minute=limit, clock=lambda: float(next(tick)))  # fmt: skip
    start = threading.Barrier(threads)
    queued: list[int] = []

    def hammer() -> None:
        start.wait()
        queued.append(sum(sender.send("trade_closed", "t", "b") for _ in range(each)))

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sender.close(30.0)
    return sum(queued), sum(int(n) for b in bodies for n in re.findall(r"(\d+) alerts dropped", b))


def test_senders_on_several_threads_keep_the_rate_limit_and_every_count() -> None:
    """`send` checked the rate limit, then appended the send's time, and summed up the
    drops, then cleared them, with no lock: log lines of several threads passed the
    limit together, and a drop counted between the sum and the clear was lost."""
    threads, each, limit = 4, 1_000, 3
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as they can
    try:
        for _ in range(10):
            queued, summed = _hammered(threads, each, limit)
            assert queued <= limit * -(-threads * each // 60)  # at most `limit` a minute
            assert queued + summed == threads * each  # each send went out or was counted
    finally:
        sys.setswitchinterval(switch)


def test_the_log_of_the_alerts_sent_stays_bounded_over_a_long_run(tmp_path: Path) -> None:
    """Each accepted alert's key was appended to alerts.sent for ever (across runs too):
    a long run's file grew without limit, and a resume read it whole. Only the latest
    keys are kept (a resume needs those sent since its run's last checkpoint)."""
    path = tmp_path / "alerts.sent"
    accepted = threading.Semaphore(0)

    def deliver(title: str, body: str) -> bool:
        accepted.release()
        return True

    total = 3 * SENT_KEEP
    sender = AlertSender([("x", deliver)], max_per_minute=10 * total, sent_log=path)
    for i in range(total):
        assert sender.send("trade_closed", "t", f"trade {i}", key=f"key{i:06d}")
        assert accepted.acquire(timeout=30)  # delivered before the next: none dropped
    assert sender.close(30.0)
    keys = path.read_text().split()
    assert len(keys) <= 2 * SENT_KEEP
    assert keys[-SENT_KEEP:] == [f"key{i:06d}" for i in range(total - SENT_KEEP, total)]
    assert f"key{total - 1:06d}" in sent_keys(path)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (a receiver that is down: refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_receiver_down_at_the_end_does_not_hold_the_run_for_the_flush_timeout(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """With the receiver down, the run's last alerts waited in their 2 s and 10 s retry
    pauses, and the end of the run waited the whole flush_timeout (then said only
    'N not delivered'). The end cuts the pauses short: each pending alert gets its
    tries at once, the run ends as soon as they are done, and the run log names each
    alert never delivered (the halt among them)."""
    config = AlertsConfig(urls=[f"json://127.0.0.1:{closed_port}"], flush_timeout="60s")
    alerts = Alerts(config, name="perps-bot dev")
    alerts.sender.send("halt", "perps-bot dev: HALTED", "trading halted: max drawdown")
    alerts.sender.send("run_end", "perps-bot dev: run ended", "run r1 ended: completed")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="perps_bot.alerts"):
        alerts.close()
    assert time.monotonic() - started < 8.0  # not the 12 s of pauses, nor the 60 s
    assert "trading halted: max drawdown" in caplog.text
    assert "run r1 ended: completed" in caplog.text
    assert str(closed_port) not in caplog.text
