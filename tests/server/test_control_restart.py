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


async def _until(done: Callable[[], bool], timeout: float = 120) -> None:
    async with asyncio.timeout(timeout):
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


async def test_a_flatten_right_before_the_server_stops_is_not_lost(tmp_path: Path) -> None:
    """The run stopped at the end of the flatten's batch without a checkpoint: the
    session went on from the one before, the position open and the portfolio paused."""
    db = tmp_path / "server.sqlite"
    async with serving(db) as (client, manager):
        sid, ws, _ = await trading(client, "60d")
        await ws.close()
        s = manager.sessions[sid]
        assert s.run is not None
        orchestrator = s.run.orchestrator
        saver = orchestrator.after_batch
        assert isinstance(saver, Checkpointer)
        held: list[str] = []
        while not held:  # a checkpoint taken while a portfolio holds a position
            saved = saver.saved
            saver.soon()
            await _until(lambda: saver.saved > saved)  # noqa: B023
            held = [p.id for p in orchestrator.portfolios if p.ledger.symbols()
                    and any(p.ledger.position_size(x) for x in p.ledger.symbols())]  # fmt: skip
        assert s.control(held[0], "flatten")["closing"] >= 1
        manager.controlled(s)
        manager._closing = True  # the server stops (its close), before any further batch
        orchestrator.request_stop(SERVER_STOPPED, interrupt=True)
    async with serving(db) as (client, manager):
        again = manager.sessions[sid]
        await _until(lambda: again.run is not None)
        assert again.run is not None
        (p,) = [p for p in again.run.orchestrator.portfolios if p.id == held[0]]
        assert p.paused
        await _until(lambda: all(p.ledger.position_size(x) == 0.0 for x in p.ledger.symbols()), 30)
