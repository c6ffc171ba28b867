"""A resume the session API answered, then the server stopped before the next
checkpoint: the session went on from a checkpoint taken while the portfolio was
paused, and the paused flag of that checkpoint won over the server's record of the
resume, so the portfolio stayed paused for good."""

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from perps_bot.orchestrator.checkpoint import Checkpointer
from perps_bot.orchestrator.engine import Orchestrator
from perps_bot.server.manager import SERVER_STOPPED, SessionManager
from perps_bot.server.session import Session
from tests.harness.polling import until
from tests.server.helpers import serving, trading

#: a session's run, started or restarted by the server, on a loaded machine
WAIT_S = 120


async def _trading_session(
    client: TestClient[Any, Any], manager: SessionManager
) -> tuple[str, Session, Orchestrator, Checkpointer]:
    """A dev session trading (its stream read until it does, then closed): its id, the
    session, its run's orchestrator and the checkpointer that saves it."""
    sid, ws, _ = await trading(client, "60d")
    await ws.close()
    s = manager.sessions[sid]
    assert s.run is not None
    orchestrator = s.run.orchestrator
    saver = orchestrator.after_batch
    assert isinstance(saver, Checkpointer)
    return sid, s, orchestrator, saver


def _server_stops(manager: SessionManager, s: Session, orchestrator: Orchestrator) -> None:
    """The server stops as its close does, right after the control `s` was given and
    before the run's next batch: the control recorded, the run interrupted."""
    manager.controlled(s)
    manager._closing = True
    orchestrator.request_stop(SERVER_STOPPED, interrupt=True)


async def test_a_resume_after_the_last_checkpoint_is_not_lost_on_a_restart(
    tmp_path: Path,
) -> None:
    db = tmp_path / "server.sqlite"
    async with serving(db) as (client, manager):
        sid, s, orchestrator, saver = await _trading_session(client, manager)
        pid = s.portfolio_ids[0]
        saved = saver.saved
        resp = await client.post(f"/api/sessions/{sid}/portfolios/{pid}/pause")
        assert resp.status == 200
        await until(lambda: saver.saved > saved, WAIT_S, 0.01)  # a checkpoint of the pause
        # resumed, and the server stopped before the run's next batch (as its close
        # does: no checkpoint after the resume)
        assert s.control(pid, "resume")["paused"] is False
        _server_stops(manager, s, orchestrator)
    async with serving(db) as (client, manager):
        again = manager.sessions[sid]
        await until(lambda: again.run is not None, WAIT_S, 0.01)
        assert again.status == "running"
        assert again.paused() == [], "the resume the API answered is kept"


async def test_a_flatten_right_before_the_server_stops_is_not_lost(tmp_path: Path) -> None:
    """The run stopped at the end of the flatten's batch without a checkpoint: the
    session went on from the one before, the position open and the portfolio paused."""
    db = tmp_path / "server.sqlite"
    async with serving(db) as (client, manager):
        sid, s, orchestrator, saver = await _trading_session(client, manager)
        held: list[str] = []
        while not held:  # a checkpoint taken while a portfolio holds a position
            saved = saver.saved
            saver.soon()
            await until(lambda: saver.saved > saved, WAIT_S, 0.01)  # noqa: B023
            held = [p.id for p in orchestrator.portfolios if p.ledger.symbols()
                    and any(p.ledger.position_size(x) for x in p.ledger.symbols())]  # fmt: skip
        assert s.control(held[0], "flatten")["closing"] >= 1
        _server_stops(manager, s, orchestrator)
    async with serving(db) as (client, manager):
        again = manager.sessions[sid]
        await until(lambda: again.run is not None, WAIT_S, 0.01)
        assert again.run is not None
        (p,) = [p for p in again.run.orchestrator.portfolios if p.id == held[0]]
        assert p.paused
        await until(
            lambda: all(p.ledger.position_size(x) == 0.0 for x in p.ledger.symbols()), 30, 0.01
        )
