"""SPEC 9: "a crash loses no acknowledged fill", and `--resume` continues a paper run
from its last checkpoint. A dry run trades on the exchange's live market: what it did
after its checkpoint cannot be replayed, unlike a `--dev-fast` run. Measured on main: a
dry run stopped (Ctrl-C, SIGTERM, or killed) up to 2 s after a fill, that is after the
fill was stored but before the next checkpoint, was resumed from the checkpoint before
the fill: the resume deleted the stored fill, and the run went on flat as if it had
never traded, while events.jsonl kept the fill (and its alert had been sent)."""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from perps_bot.orchestrator.run_process import INTERRUPTED
from perps_bot.orchestrator.runner import Run, run_bot
from perps_emulator import EmulatorServer
from tests.durable.helpers import (
    checkpointer_of,
    flip_once_dry_run,
    query,
    stopped_after_a_batch,
)

pytestmark = pytest.mark.integration

FILLS = "SELECT client_id, side, size, price, ts FROM fills WHERE run_id=? ORDER BY seq"


@contextlib.asynccontextmanager
async def _stopped_after_its_fill(run: Run) -> AsyncIterator[None]:
    """A checkpoint at every batch before the entry's fill (the last one before it, as a
    checkpoint every 2 s of wall time would be), then a stop at the batch that fills it:
    the fill is stored before any later checkpoint was due."""
    orchestrator, checkpointer = run.orchestrator, checkpointer_of(run)

    def after_batch() -> None:
        if orchestrator.ledger.position_size("ETH-PERP") == 0:
            checkpointer.save()
        elif not orchestrator.stop_requested:
            orchestrator.request_stop(INTERRUPTED, interrupt=True)

    orchestrator.after_batch = after_batch
    yield


async def test_a_resumed_dry_run_keeps_the_fill_it_stored_after_its_checkpoint(
    in_repo: Path, run_dirs: dict[str, str]
) -> None:
    async with EmulatorServer(seed=3) as emulator:
        settings = flip_once_dry_run(emulator.base_url, run_dirs)
        first = await run_bot(settings, progress=False, attach=_stopped_after_its_fill)
        assert first.status == "interrupted"
        stored = query(first.db_path, FILLS, (first.run_id,))
        assert [row[1] for row in stored] == ["buy"], stored
        resumed = await run_bot(
            settings, progress=False, resume="latest", attach=stopped_after_a_batch
        )
    assert resumed.run_id == first.run_id
    assert query(first.db_path, FILLS, (first.run_id,)) == stored, "the stored fill is gone"
    [(held,)] = query(first.db_path, "SELECT size FROM positions WHERE run_id=?"
                      " AND symbol='ETH-PERP'", (first.run_id,))  # fmt: skip
    assert held == pytest.approx(stored[0][2])
