"""Which run a bare `--resume` continues (SPEC 9): the latest crashed or interrupted
run of the profile that this command can continue, i.e. of its own kind."""

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from perps_bot.config import load_settings
from perps_bot.orchestrator.replay import FillChoice, run_replay
from perps_bot.orchestrator.run_process import INTERRUPTED
from perps_bot.orchestrator.runner import Run, run_bot
from perps_emulator import EmulatorServer
from tests.durable.helpers import checkpointer_of

STRATEGY = "tests.live.canary_strategy:FlipOnce"


@contextlib.asynccontextmanager
async def _interrupted_at_a_checkpoint(run: Run) -> AsyncIterator[None]:
    """Ctrl-C right after the first checkpoint."""
    orchestrator, checkpointer = run.orchestrator, checkpointer_of(run)

    def after_batch() -> None:
        checkpointer.save()
        if checkpointer.saved:
            orchestrator.request_stop(INTERRUPTED, interrupt=True)

    orchestrator.after_batch = after_batch
    yield


@pytest.mark.integration
async def test_a_bare_resume_of_a_dry_run_passes_over_a_later_killed_replay(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    settings = load_settings(
        "canary",
        {
            "run": {"duration": "30s", "dry_run": True, "live_view": False, **run_dirs},
            "exchange": {"base_url": emulator.base_url, "poll_interval": "250ms"},
            "strategy": {"name": STRATEGY, "params": {"hold": 3}},
        },
    )
    first = await run_bot(settings, progress=False, attach=_interrupted_at_a_checkpoint)
    assert first.status == "interrupted"
    db = first.db_path
    capture = Path(run_dirs["data_dir"]) / "captures" / first.run_id
    _, replayed = await asyncio.to_thread(run_replay, capture, FillChoice(), db=str(db))
    with sqlite3.connect(db) as conn:  # the replay was killed
        conn.execute("UPDATE runs SET status='crashed' WHERE run_id=?", (replayed.run_id,))

    seen: list[str] = []

    @contextlib.asynccontextmanager
    async def look(run: Run) -> AsyncIterator[None]:
        seen.append(run.run_id)
        run.orchestrator.request_stop("seen")
        yield

    resumed = await run_bot(settings, progress=False, resume="latest", attach=look)
    assert seen == [first.run_id] and resumed.run_id == first.run_id
