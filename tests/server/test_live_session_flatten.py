"""A live session's flatten and a server restart: the session goes on as a new run of
the account, which reconciles with the exchange (where the flatten's close went) and
does not send the flatten's closes again (a paper session's run applies again only a
flatten its checkpoint does not hold: tests/server/test_control_kill.py); a flatten
whose closes were never made (the process killed between the API's answer and the run's
next event) is carried out by the new run, once."""

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from perps_bot.server.session import FLATTEN
from perps_bot.storage import RunStore
from perps_emulator.faults import Fault
from perps_emulator.server import EmulatorServer
from tests.server.live_sessions import (
    a_second_of_books,
    emulated,
    live_env,
    live_server,
    live_serving,
    the_live_session,
    until,
)

pytestmark = pytest.mark.integration


async def _held(client: TestClient[Any, Any], sid: str, held: bool) -> None:
    """Until the session's portfolio holds a position (`held`) or none (60 s at most)."""
    async with asyncio.timeout(60):
        while True:
            view = await (await client.get(f"/api/sessions/{sid}/portfolio")).json()
            sizes = [pos["size"] for p in view["portfolios"] for pos in p["positions"]]
            if any(sizes) == held:
                return
            await asyncio.sleep(0.05)


async def test_a_live_flatten_is_not_sent_again_when_the_server_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    database = live_env(monkeypatch, tmp_path)
    async with emulated(monkeypatch) as exchange:
        async with live_server(tmp_path) as client:
            sid = await the_live_session(client)
            status = await until(client, sid, a_second_of_books)
            pid = status["portfolios"][0]["id"]
            await _held(client, sid, True)  # the strategy's entry filled
            resp = await client.post(f"/api/sessions/{sid}/portfolios/{pid}/flatten")
            assert resp.status == 200 and (await resp.json())["closing"] == 1
            await _held(client, sid, False)
        async with live_server(tmp_path) as client:
            assert await the_live_session(client) == sid
            again = await until(client, sid, a_second_of_books)
            assert again["run_id"] != status["run_id"], again  # a new run of the account
            assert [p["paused"] for p in again["portfolios"]] == [True], again
            await _held(client, sid, False)
        held = exchange.state.positions["ETHUSDT"].amount
    with RunStore(database) as store:
        closes = store.connection.execute(
            "SELECT run_id, side, size FROM orders WHERE reason=?", (FLATTEN,)
        ).fetchall()
    assert [c[0] for c in closes] == [status["run_id"]], closes
    assert held == 0.0, "a flatten sent again opened the opposite position"


class Killed(BaseException):
    """The server's process dies here (nothing after it runs as the server would have it)."""


async def _flattened_then_killed(
    tmp_path: Path, exchange: EmulatorServer, database: Path, *, refused: bool
) -> tuple[str, dict[str, Any]]:
    """A live session holding its strategy's entry is flattened (as the API's handler
    does it, between two batches) and its server killed: at once, before the run's next
    event made the closes, or (`refused`) once the close went out and the exchange
    refused it. Leaves what SIGKILL leaves: the run `running`. The session's id and its
    status before the flatten."""
    async with live_serving(tmp_path) as (client, manager):
        sid = await the_live_session(client)
        status = await until(client, sid, a_second_of_books)
        pid = status["portfolios"][0]["id"]
        await _held(client, sid, True)
        s = manager.sessions[sid]
        assert s.run is not None
        answers: list[dict[str, Any]] = []
        seen = len(exchange.requests)

        def flatten_then_die() -> None:
            if not answers:
                if refused:
                    exchange.inject(Fault("error_code", code=-2022, count=1000))
                answers.append(s.control(pid, "flatten"))
                manager.controlled(s)
                if not refused:
                    raise Killed
            elif any(r.path == "/fapi/v1/order" for r in exchange.requests[seen:]):
                raise Killed  # the close was sent and refused

        s.run.orchestrator.after_batch = flatten_then_die
        assert s.task is not None
        with pytest.raises(Killed):
            await s.task
        assert answers[0]["closing"] == 1
    exchange.clear_faults()
    with RunStore(database) as store:
        store.connection.execute("UPDATE runs SET status='running'")
        store.connection.commit()
    return sid, status


@pytest.mark.pure_python  # a live session: live runs are plain Python (perps_bot.compiled)
async def test_a_live_flatten_answered_before_a_kill_is_carried_out_once_after_the_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    """The API answered the flatten (kept in the sessions table), then the process died
    before the run's next event made the closes. The session went on as a new run,
    paused, the position still open: the flatten the trader was told about was lost.
    The new run carries it out, once: one close, the account flat; a second restart
    sends nothing more."""
    await _answered_before_a_kill(tmp_path, monkeypatch)


async def test_the_compiled_engine_carries_out_a_flatten_answered_before_a_kill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    """The same with the compiled engine (this pass). It failed there: the killed run
    closed inside its `finally`, which left its exception in the thread's state for
    every task, and the restarted server's run raised it again and ended `completed`
    after a second (tests/architecture/test_compiled_awaits.py)."""
    await _answered_before_a_kill(tmp_path, monkeypatch)


async def _answered_before_a_kill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = live_env(monkeypatch, tmp_path)
    async with emulated(monkeypatch) as exchange:
        sid, status = await _flattened_then_killed(tmp_path, exchange, database, refused=False)
        held = exchange.state.positions["ETHUSDT"].amount
        for _ in range(2):
            async with live_server(tmp_path) as client:
                assert await the_live_session(client) == sid
                again = await until(client, sid, a_second_of_books)
                assert [p["paused"] for p in again["portfolios"]] == [True], again
                await _held(client, sid, False)
        left = exchange.state.positions["ETHUSDT"].amount
    with RunStore(database) as store:
        closes = store.connection.execute(
            "SELECT run_id, side, size FROM orders WHERE reason=?", (FLATTEN,)
        ).fetchall()
    assert held > 0.0 and left == 0.0
    assert len(closes) == 1 and closes[0][1:] == ("sell", held), closes
    assert closes[0][0] not in (status["run_id"], again["run_id"]), "not the killed run's"


async def test_a_live_flatten_whose_close_was_refused_is_carried_out_after_the_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    """The flatten's close went out and the exchange refused it; the run kept the flatten
    to close again, and the process died before it did. The sessions table counted the
    flatten carried out (its closes had been made), so the restarted session came back
    paused with the position open. It carries the flatten out, once."""
    database = live_env(monkeypatch, tmp_path)
    async with emulated(monkeypatch) as exchange:
        sid, _ = await _flattened_then_killed(tmp_path, exchange, database, refused=True)
        held = exchange.state.positions["ETHUSDT"].amount
        async with live_server(tmp_path) as client:
            assert await the_live_session(client) == sid
            await until(client, sid, a_second_of_books)
            await _held(client, sid, False)
        left = exchange.state.positions["ETHUSDT"].amount
    assert held > 0.0 and left == 0.0
