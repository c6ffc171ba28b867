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
from aiohttp.test_utils import TestClient

from perps_bot.orchestrator import runner
from perps_bot.server.requests import RequestError
from perps_bot.server.session import STOPPED
from perps_bot.storage import RunStore
from perps_bot.storage import sessions as table
from tests.server.helpers import start
from tests.server.live_sessions import (
    LIVE_SESSION,
    a_second_of_books,
    emulated,
    ended,
    live_env,
    live_serving,
    until,
)

pytestmark = pytest.mark.integration


async def _held(client: TestClient[Any, Any], sid: str) -> None:
    """Until the session's portfolio holds a position (60 s at most)."""
    async with asyncio.timeout(60):
        while True:
            view = await (await client.get(f"/api/sessions/{sid}/portfolio")).json()
            if any(pos["size"] for p in view["portfolios"] for pos in p["positions"]):
                return
            await asyncio.sleep(0.05)


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


@pytest.mark.pure_python  # a live session: live runs are plain Python (perps_bot.compiled)
async def test_a_flatten_the_ending_run_cannot_make_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    """A flatten that came once the stopping run had sent its last orders (while it
    closes its feed and venue) was answered `closing: 1` and never made: the session
    ended `stopped`, the account still long. It is refused (409): the trader knows."""
    live_env(monkeypatch, tmp_path)
    async with emulated(monkeypatch) as exchange:
        async with live_serving(tmp_path) as (client, manager):
            sid = await start(client, LIVE_SESSION)
            status = await until(client, sid, a_second_of_books)
            pid = status["portfolios"][0]["id"]
            await _held(client, sid)
            s = manager.sessions[sid]
            assert s.run is not None
            orchestrator, answers = s.run.orchestrator, []
            closing = orchestrator.close

            async def flatten_then_close() -> None:  # the API's flatten, as the run ends
                if not answers:  # (the runner closes it again: nothing more to do then)
                    try:
                        answers.append(s.control(pid, "flatten"))
                    except RequestError as exc:
                        answers.append({"refused": exc.status})
                await closing()

            monkeypatch.setattr(orchestrator, "close", flatten_then_close)
            assert (await client.post(f"/api/sessions/{sid}/stop")).status == 200
            final = await until(client, sid, ended)
        held = exchange.state.positions["ETHUSDT"].amount
    assert final["status"] == "stopped", final
    assert answers == [{"refused": 409}] or held == 0.0, (answers, held)
