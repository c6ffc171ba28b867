"""SPEC 9: a replay is a paper run `--resume` continues from its last checkpoint, and a
resumed replay ends with the fills of an uninterrupted one. The replay's feed kept no
state in the checkpoint (it started over from the capture's first event, on books
restored to the checkpoint: every trade before it was made twice), and `perps-bot
replay` had no `--resume`: an interrupted replay could only be started again."""

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from perps_bot.cli.app import app
from perps_bot.feeds.replay import ReplayFeed
from perps_bot.orchestrator.replay import FillChoice, replay_settings
from perps_bot.orchestrator.run_process import INTERRUPTED
from perps_bot.orchestrator.runner import Run, run_bot
from perps_emulator import EmulatorServer
from tests.drift.dry import dry_run, filled
from tests.durable.helpers import checkpointer_of

pytestmark = pytest.mark.integration


def _fills(db: Path, run_id: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT ts, symbol, side, size, price, fee FROM fills"
                            " WHERE run_id=? ORDER BY seq", (run_id,)).fetchall()  # fmt: skip


def _interrupted_after(batches: int) -> Any:
    """A checkpoint after every batch; Ctrl-C after `batches` of them."""

    @contextlib.asynccontextmanager
    async def attach(run: Run) -> AsyncIterator[None]:
        orchestrator, checkpointer = run.orchestrator, checkpointer_of(run)

        def after_batch() -> None:
            checkpointer.save()
            if checkpointer.saved == batches:
                orchestrator.request_stop(INTERRUPTED, interrupt=True)

        orchestrator.after_batch = after_batch
        yield

    return attach


async def test_an_interrupted_replay_resumes_to_the_fills_of_an_uninterrupted_one(
    in_repo: Path, run_dirs: dict[str, str], tmp_path: Path
) -> None:
    async with EmulatorServer(symbols=("ETHUSDT",), seed=4, tick_interval_s=0.1) as server:
        live = await dry_run(server, run_dirs, until=lambda run: filled(run, 6))
    folder = Path(run_dirs["data_dir"]) / "captures" / live.run_id
    db = tmp_path / "replays.sqlite"
    settings = replay_settings(ReplayFeed(folder), FillChoice(), db=str(db))
    whole = await run_bot(settings, feed=ReplayFeed(folder, batch_size=8), progress=False)
    assert whole.status == "completed" and whole.fills >= 4
    cut = await run_bot(settings, feed=ReplayFeed(folder, batch_size=8), progress=False,
                        attach=_interrupted_after(3))  # fmt: skip
    assert cut.status == "interrupted" and cut.fills < whole.fills
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["replay", "--capture", str(folder), "--db", str(db),
                                  "--resume", cut.run_id])  # fmt: skip
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert f"replay {cut.run_id} of {live.run_id} completed" in result.stdout
    assert _fills(db, cut.run_id) == _fills(db, whole.run_id)
