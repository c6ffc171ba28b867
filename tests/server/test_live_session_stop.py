"""A live session stopped while it is starting sends no order: the stop cancels its
task, and a cancellation lost on the way (Python 3.11's `asyncio.wait_for` returns the
result of a call that completed in the same step as the cancel, as the exchange's
`load_markets` at the start can) must not let the run go on trading an account whose
session the API answered `stopping` and the sessions table holds `stopped`."""

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest

from perps_bot.orchestrator import runner
from perps_bot.server.session import STOPPED
from perps_bot.storage import RunStore
from perps_bot.storage import sessions as table
from tests.server.helpers import start
from tests.server.live_sessions import LIVE_SESSION, emulated, ended, live_env, live_serving, until

pytestmark = pytest.mark.integration


def _cancel_lost(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """The run's start loses the cancel that comes once it is done (set then)."""
    real, ready = runner.preflight, asyncio.Event()

    async def cancel_lost(*args: Any, **kwargs: Any) -> Any:
        pre = await real(*args, **kwargs)
        ready.set()
        # the cancel arrives as the exchange's answer does: it is lost
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        return pre

    monkeypatch.setattr(runner, "preflight", cancel_lost)
    return ready


async def test_a_live_session_stopped_while_starting_sends_no_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    """Before, the run went on once its start was done: it traded, status `running`."""
    database = live_env(monkeypatch, tmp_path)
    ready = _cancel_lost(monkeypatch)
    async with emulated(monkeypatch) as exchange:
        async with live_serving(tmp_path) as (client, _):
            sid = await start(client, LIVE_SESSION | {"duration": "5s"})
            await ready.wait()
            resp = await client.post(f"/api/sessions/{sid}/stop")
            assert resp.status == 200, await resp.text()
            final = await until(client, sid, ended)
        sent = list(exchange.state.orders.values())
    assert final["status"] == "stopped", final
    assert sent == [], "the stopped session traded"
    with RunStore(database, read_only=True) as store:
        run = store.run(final["run_id"]) if final["run_id"] else None
    assert run is None or (run.status, run.detail) == ("interrupted", STOPPED), run


async def test_a_live_session_starting_as_the_server_stops_sends_no_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    """The server's stop cancels a session still starting, likewise: before, a lost
    cancel let its run trade to its end while the server waited for it, and the
    session ended `completed` instead of going on at the next start."""
    live_env(monkeypatch, tmp_path)
    ready = _cancel_lost(monkeypatch)
    async with emulated(monkeypatch) as exchange:
        async with live_serving(tmp_path) as (client, _):
            sid = await start(client, LIVE_SESSION | {"duration": "5s"})
            await ready.wait()
        sent = list(exchange.state.orders.values())
    assert sent == [], "the session traded as the server stopped"
    with RunStore(tmp_path / "server.sqlite", read_only=True) as store:
        (record,) = table.load_sessions(store.connection)
    assert record.session_id == sid and record.status in table.UNFINISHED, record
