"""Running the bot as a real process (to kill it with SIGKILL) and reading its database
the way an operator would, for the restart, crash and resume tests (issue 11)."""

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from perps_bot.config import Settings, load_settings
from perps_bot.orchestrator.checkpoint import Checkpointer
from perps_bot.orchestrator.wiring import Run
from perps_bot.risk import RiskState
from perps_bot.storage import RunStore
from perps_bot.storage import durable as stored
from tests.conftest import REPO

#: the columns a fill is compared on (same rows: ts, side, size, price, fee)
FILL_COLUMNS = "seq, ts, symbol, side, size, price, fee, client_id"


def env(tmp: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without PERPS_BOT__* settings, logs sent to `tmp`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PERPS_BOT__")}
    return base | {"PERPS_BOT__RUN__LOG_DIR": str(tmp / "logs")} | extra


def cli(
    *args: str, tmp: Path, timeout: float = 180, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perps_bot", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(tmp, **extra),
    )


def start(*args: str, tmp: Path, **extra: str) -> "subprocess.Popen[str]":
    return subprocess.Popen(
        [sys.executable, "-m", "perps_bot", *args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env(tmp, **extra),
    )


def kill9(proc: "subprocess.Popen[str]") -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def query(db: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(db, timeout=10)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # table not there (yet)
        return []
    finally:
        conn.close()


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def runs(db: Path) -> list[tuple[str, str, str | None]]:
    """(run_id, status, detail) of every run, oldest first."""
    return [
        (str(r[0]), str(r[1]), r[2])
        for r in query(db, "SELECT run_id, status, detail FROM runs ORDER BY created_at, rowid")
    ]


def fills(db: Path, run_id: str) -> list[tuple[Any, ...]]:
    return query(db, f"SELECT {FILL_COLUMNS} FROM fills WHERE run_id=? ORDER BY seq", (run_id,))


def checkpointer_of(run: Run) -> Checkpointer:
    """The checkpointer a paper run calls after each batch (tests wrap it to checkpoint
    or stop the run at a moment they choose)."""
    checkpointer = run.orchestrator.after_batch
    assert isinstance(checkpointer, Checkpointer)
    return checkpointer


@contextlib.asynccontextmanager
async def stopped_after_a_batch(run: Run) -> AsyncIterator[None]:
    """A `run_bot(attach=...)` that stops the run after its first batch (a resumed run
    that only has to show what it restored)."""
    orchestrator = run.orchestrator
    orchestrator.after_batch = lambda: orchestrator.request_stop("seen")
    yield


def flip_once_dry_run(base_url: str, run_dirs: dict[str, str]) -> Settings:
    """A canary dry run against the emulator at `base_url` whose strategy goes long on
    its first book and holds (tests.live.canary_strategy:FlipOnce), polling fast."""
    return load_settings("canary", {
        "run": {"duration": "60s", "dry_run": True, "live_view": False, **run_dirs},
        "exchange": {"base_url": base_url, "poll_interval": "100ms"},
        "strategy": {"name": "tests.live.canary_strategy:FlipOnce", "params": {"hold": 100_000}},
    })  # fmt: skip


def store_halt(db: Path, why: str, portfolio: str = "main") -> None:
    """What a run that halted stored in `db` (its drawdown limit; of `portfolio` of a
    run with several)."""
    state = RiskState("HALTED", why, drawdown_halt=why)
    with RunStore(db) as store, store.transaction():
        stored.save_trading_state(
            store.connection, profile="canary", state=state.state, detail=state.detail,
            risk=state.to_json(), run_id="earlier", source="run", portfolio=portfolio,
        )  # fmt: skip
