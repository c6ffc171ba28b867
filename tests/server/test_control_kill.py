"""A flatten the session API answered, then the server's process killed with SIGKILL in
the batch that took the flatten up (its closes made and filled), before the checkpoint
at the end of that batch: the session went on from the checkpoint before the flatten,
its position open (the portfolio paused: the server had kept that), the flatten lost.
It is applied again once, and only when the checkpoint it goes on from does not hold it
already (a flatten applied twice sent its closes twice)."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from perps_bot.orchestrator.checkpoint import Checkpointer
from perps_bot.orchestrator.portfolio import Portfolio
from tests.conftest import REPO
from tests.durable.helpers import env, query
from tests.harness.polling import until
from tests.server.helpers import serving, trading

FLATTEN = "flatten (session API)"
WAIT_S = 120  # a session's run, started or restarted by the server, on a loaded machine


def _held(p: Portfolio) -> bool:
    return any(p.ledger.position_size(x) != 0.0 for x in p.ledger.symbols())


async def killed_after_a_flatten(db: Path, checkpointed: bool) -> None:
    """A dev session trading, a checkpoint taken while a portfolio holds a position, the
    flatten of that portfolio, and SIGKILL at the end of the batch in which the flatten's
    closes were made, before the checkpoint of that batch. The flatten comes over HTTP,
    the checkpointer held back from then on; or (`checkpointed`) between two batches as
    the API's handler gives it, followed by a checkpoint: the one the run goes on from
    holds the flatten's closes, not sent yet."""
    async with serving(db) as (client, manager):
        sid, ws, _ = await trading(client, "60d")
        await ws.close()
        s = manager.sessions[sid]
        assert s.run is not None
        run, orchestrator = s.run, s.run.orchestrator
        saver = orchestrator.after_batch
        assert isinstance(saver, Checkpointer)
        held: list[Portfolio] = []
        while not held:  # a checkpoint taken while a portfolio holds a position
            saved = saver.saved
            saver.soon()
            await until(lambda: saver.saved > saved, WAIT_S, 0.01)  # noqa: B023
            held = [p for p in orchestrator.portfolios if _held(p)]
        flatten: dict[str, Any] = {}
        made: list[str] = []
        run.journal.subscribe(
            lambda kind, line: (
                made.append(kind) if kind == "order" and line["reason"] == FLATTEN else None
            )
        )

        def after_batch() -> None:
            if checkpointed and not flatten:
                flatten["answer"] = s.control(held[0].id, "flatten")  # as the API's handler
                manager.controlled(s)
                saver.save()
            elif not flatten:
                saver()
            elif made and "answer" in flatten:
                os.kill(os.getpid(), signal.SIGKILL)

        orchestrator.after_batch = after_batch
        if not checkpointed:
            flatten["asked"] = True
            resp = await client.post(f"/api/sessions/{sid}/portfolios/{held[0].id}/flatten")
            assert resp.status == 200, await resp.text()
            flatten["answer"] = await resp.json()
            assert flatten["answer"]["closing"] >= 1
        await asyncio.get_running_loop().create_future()  # until the kill


_KILLED = """
import asyncio, sys
from pathlib import Path
from tests.server.test_control_kill import killed_after_a_flatten
asyncio.run(killed_after_a_flatten(Path(sys.argv[1]), sys.argv[2] == "1"))
"""


def _kill_after_a_flatten(tmp: Path, db: Path, checkpointed: bool) -> None:
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED, str(db), "1" if checkpointed else "0"],
        cwd=REPO, env=env(tmp), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]


async def _goes_on_flat(db: Path) -> list[tuple[Any, ...]]:
    """The server started again: the flattened portfolio goes on paused and flat; the
    closes of the flatten stored for its run (symbol, side, size)."""
    [(sid,)] = query(db, "SELECT session_id FROM sessions")
    async with serving(db) as (_, manager):
        again = manager.sessions[sid]
        await until(lambda: again.run is not None, WAIT_S, 0.01)
        assert again.run is not None
        orchestrator = again.run.orchestrator
        [p] = [p for p in orchestrator.portfolios if p.paused]
        await until(lambda: not _held(p) and not p.pending, 30, 0.01)
        run_id = p.rec.run_id
        again.stop()
        await until(lambda: again.run is None, WAIT_S, 0.01)
        assert not _held(p), "a flatten applied twice opened the opposite position"
    return query(db, "SELECT symbol, side, size FROM orders WHERE run_id=? AND reason=?",
                 (run_id, FLATTEN))  # fmt: skip


async def test_a_flatten_killed_in_the_batch_that_took_it_up_is_applied_on_restart(
    tmp_path: Path,
) -> None:
    db = tmp_path / "server.sqlite"
    _kill_after_a_flatten(tmp_path, db, checkpointed=False)
    closes = await _goes_on_flat(db)
    assert closes, "the flatten the API answered was lost with the process"
    assert len({c[0] for c in closes}) == len(closes), f"closed twice: {closes}"


async def test_a_flatten_the_checkpoint_holds_is_not_applied_again_on_restart(
    tmp_path: Path,
) -> None:
    db = tmp_path / "server.sqlite"
    _kill_after_a_flatten(tmp_path, db, checkpointed=True)
    closes = await _goes_on_flat(db)
    assert closes
    assert len({c[0] for c in closes}) == len(closes), f"closed twice: {closes}"


async def killed_after_a_stop(db: Path) -> None:
    """A dev session trading, stopped over HTTP, and SIGKILL once the answer is in,
    before its run has closed (its close waits for the answer)."""
    async with serving(db) as (client, manager):
        sid, ws, _ = await trading(client, "60d")
        await ws.close()
        s = manager.sessions[sid]
        assert s.run is not None
        orchestrator = s.run.orchestrator
        answered = asyncio.Event()

        async def close() -> None:
            await answered.wait()
            os.kill(os.getpid(), signal.SIGKILL)

        orchestrator.close = close  # type: ignore[method-assign]
        resp = await client.post(f"/api/sessions/{sid}/stop")
        assert resp.status == 200, await resp.text()
        answered.set()
        await asyncio.get_running_loop().create_future()  # until the kill


_KILLED_STOPPING = """
import asyncio, sys
from pathlib import Path
from tests.server.test_control_kill import killed_after_a_stop
asyncio.run(killed_after_a_stop(Path(sys.argv[1])))
"""


@pytest.mark.pure_python  # patches the engine's close in the killed server
async def test_a_stop_the_api_answered_is_not_undone_by_a_kill(tmp_path: Path) -> None:
    """Killed before the stopped session's end was stored: the server started again went
    on with the session, trading again, as if it had never been stopped."""
    db = tmp_path / "server.sqlite"
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_STOPPING, str(db)],
        cwd=REPO, env=env(tmp_path), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    [(sid,)] = query(db, "SELECT session_id FROM sessions")
    async with serving(db) as (_, manager):
        again = manager.sessions[sid]
        assert again.task is None and again.run is None, "the stopped session went on"
        assert again.status == "stopped"
