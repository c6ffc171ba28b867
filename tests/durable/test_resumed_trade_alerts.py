"""SPEC 9 and 12: a paper run stopped between two checkpoints is resumed from the
last one and replays what followed it. Each trade of the run is alerted (and has its
trade_closed line and TRADE CLOSED log line) once: a trade open at the checkpoint that
closes in the resumed run is announced (it was not: the resumed run did not know it
was open), and one closed after the checkpoint but before the stop, alerted then, is
not announced a second time by its replay (the batch in which a trade closes ends with
a checkpoint when trades are alerted)."""

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import Settings, load_settings
from perps_bot.orchestrator.run_process import INTERRUPTED
from perps_bot.orchestrator.runner import Run, run_bot_sync
from tests.conftest import REPO
from tests.durable.helpers import checkpointer_of, env, wait_for
from tests.harness.alert_receiver import alert_receiver


def _settings(tmp: Path, port: int) -> Settings:
    run = {"dev_fast": True, "duration": "12h", "seed": 5, "log_dir": str(tmp / "logs"),
           "data_dir": str(tmp / "data")}  # fmt: skip
    alerts = {"urls": [f"json://127.0.0.1:{port}"], "on": ["trade_closed"],
              "max_per_minute": 100_000}  # fmt: skip
    return load_settings("dev", {"run": run, "alerts": alerts})


def _stopped_after(trades: int) -> Callable[[Run], Any]:
    """A checkpoint at the end of the batch in which the first trade closed (the next
    one, opened by the same flip, is open in it), no other the test does not ask for;
    stopped at the end of the batch in which `trades` trades have closed."""

    @contextlib.asynccontextmanager
    async def attach(run: Run) -> AsyncIterator[None]:
        orchestrator, checkpointer = run.orchestrator, checkpointer_of(run)
        checkpointer.every_s = 1e9  # no checkpoint for the time that passes
        closed: list[int] = []
        run.journal.subscribe(
            lambda t, line: closed.append(line["ts"]) if t == "trade_closed" else None
        )

        def after_batch() -> None:
            if closed and checkpointer.saved == 0:
                checkpointer.save()
            checkpointer()
            if len(closed) >= trades:
                orchestrator.request_stop(INTERRUPTED, interrupt=True)

        orchestrator.after_batch = after_batch
        yield

    return attach


@pytest.mark.parametrize("stop_after", [1, 3])
def test_each_trade_of_a_resumed_run_is_alerted_once(tmp_path: Path, stop_after: int) -> None:
    with alert_receiver() as (port, received):
        settings = _settings(tmp_path, port)
        first = run_bot_sync(settings, progress=False, attach=_stopped_after(stop_after))
        assert first.status == "interrupted"
        resumed = run_bot_sync(settings, progress=False, resume="latest")
    assert resumed.run_id == first.run_id and resumed.status == "completed"
    assert resumed.report is not None
    alerted = [r["message"] for r in received if r["title"].endswith(": trade closed")]
    assert len(alerted) == len(set(alerted)), [m for m in alerted if alerted.count(m) > 1]
    assert len(alerted) == len(resumed.report.trades)
    log = (tmp_path / "logs" / "perps_bot.log").read_text(encoding="utf-8")
    assert log.count("TRADE CLOSED") >= len(resumed.report.trades)


@contextlib.asynccontextmanager
async def killed_once_alerted(run: Run) -> AsyncIterator[None]:
    """A checkpoint after every batch, and a SIGKILL the moment the first trade's alert
    was delivered: in the middle of its batch, before the checkpoint that ends it."""
    checkpointer_of(run).every_s = 0.0
    assert run.watchers is not None and run.watchers.alerts is not None
    sender = run.watchers.alerts.sender

    def on_line(type_: str, line: dict[str, Any]) -> None:
        if type_ == "trade_closed":
            wait_for(lambda: sender.sent >= 1, 30, "the trade's alert delivered")
            os.kill(os.getpid(), signal.SIGKILL)

    run.journal.subscribe(on_line)
    yield


_KILLED = """
import sys
from pathlib import Path
from perps_bot.orchestrator.runner import run_bot_sync
from tests.durable.test_resumed_trade_alerts import _settings, killed_once_alerted
settings = _settings(Path(sys.argv[1]), int(sys.argv[2]))
run_bot_sync(settings, progress=False, attach=killed_once_alerted)
"""


def test_an_alert_sent_just_before_a_hard_kill_is_not_sent_again(tmp_path: Path) -> None:
    """Killed between a trade's alert and the checkpoint at the end of its batch: the
    resumed run replays the batch from the checkpoint before, and alerted the trade a
    second time. Each trade is alerted once, the one alerted before the kill too."""
    with alert_receiver() as (port, received):
        killed = subprocess.run(
            [sys.executable, "-c", _KILLED, str(tmp_path), str(port)],
            cwd=REPO, env=env(tmp_path), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        before = [r["message"] for r in received if r["title"].endswith(": trade closed")]
        assert len(before) == 1, before
        resumed = run_bot_sync(_settings(tmp_path, port), progress=False, resume="latest")
    assert resumed.status == "completed" and resumed.report is not None
    alerted = [r["message"] for r in received if r["title"].endswith(": trade closed")]
    assert alerted.count(before[0]) == 1, "the trade alerted before the kill, alerted again"
    assert len(alerted) == len(set(alerted)) == len(resumed.report.trades), alerted
