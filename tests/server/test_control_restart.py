"""A resume the session API answered, then the server stopped before the next
checkpoint: the session went on from a checkpoint taken while the portfolio was
paused, and the paused flag of that checkpoint won over the server's record of the
resume, so the portfolio stayed paused for good."""

import asyncio
from collections.abc import Callable
from pathlib import Path

from perps_bot.orchestrator.checkpoint import Checkpointer
from perps_bot.server.manager import SERVER_STOPPED
from tests.server.helpers import serving, trading


async def _until(done: Callable[[], bool]) -> None:
    async with asyncio.timeout(120):
        while not done():
            await asyncio.sleep(0.01)


async def test_a_resume_after_the_last_checkpoint_is_not_lost_on_a_restart(
    tmp_path: Path,
) -> None:
    db = tmp_path / "server.sqlite"
    async with serving(db) as (client, manager):
        sid, ws, _ = await trading(client, "60d")
        await ws.close()
        s = manager.sessions[sid]
        assert s.run is not None
        pid, orchestrator = s.portfolio_ids[0], s.run.orchestrator
        saver = orchestrator.after_batch
        assert isinstance(saver, Checkpointer)
        saved = saver.saved
        resp = await client.post(f"/api/sessions/{sid}/portfolios/{pid}/pause")
        assert resp.status == 200
        await _until(lambda: saver.saved > saved)  # a checkpoint of the pause
        # resumed, and the server stopped before the run's next batch (as its close
        # does: no checkpoint after the resume)
        assert s.control(pid, "resume")["paused"] is False
        manager.controlled(s)
        manager._closing = True
        orchestrator.request_stop(SERVER_STOPPED, interrupt=True)
    async with serving(db) as (client, manager):
        again = manager.sessions[sid]
        await _until(lambda: again.run is not None)
        assert again.status == "running"
        assert again.paused() == [], "the resume the API answered is kept"
