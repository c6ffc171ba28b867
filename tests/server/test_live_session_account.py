"""A live session of the server trades the profile's account, so it keeps that account's
state where CLI runs of the profile keep it, in the profile's own database: one bot
trades the account at a time (its lock), and what outlives a run (the halt, executed
plan rows, stops, the orders it placed) is seen by the CLI runs that come after it."""

from pathlib import Path

import pytest

from perps_bot.storage import RunStore
from perps_bot.storage.durable import load_trading_states
from perps_bot.storage.lock import DatabaseLock
from tests.durable.helpers import store_halt
from tests.server.helpers import cli_bot, start
from tests.server.live_sessions import (
    LIVE_SESSION,
    a_second_of_books,
    emulated,
    ended,
    live_env,
    live_server,
    the_live_session,
    until,
)

pytestmark = pytest.mark.integration


async def test_a_cli_bot_is_refused_while_a_live_session_trades_the_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    live_env(monkeypatch, tmp_path)
    async with emulated(monkeypatch), live_server(tmp_path) as client:
        sid = await start(client, LIVE_SESSION)
        await until(client, sid, a_second_of_books)
        code, out = await cli_bot("--profile", "canary", "--duration", "2s")
        await client.post(f"/api/sessions/{sid}/stop")
    assert code == 2, out
    assert "in use by another bot" in out and "Traceback" not in out, out


async def test_a_live_session_is_refused_while_a_cli_bot_trades_the_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    profile_db = live_env(monkeypatch, tmp_path)
    async with emulated(monkeypatch), live_server(tmp_path) as client:
        with DatabaseLock(profile_db):  # what a CLI bot of the profile holds while it runs
            refused = await client.post("/api/sessions", json=LIVE_SESSION)
            body = await refused.json()
            if refused.status == 201:  # the defect: two bots trade the account; stop it
                await until(client, body["session_id"], a_second_of_books)
                await client.post(f"/api/sessions/{body['session_id']}/stop")
        assert refused.status == 409, body
        assert "canary" in body["error"] and "\n" not in body["error"], body
        sid = await start(client, LIVE_SESSION)  # once the CLI bot is gone, it starts
        await until(client, sid, a_second_of_books)
        await client.post(f"/api/sessions/{sid}/stop")


async def test_a_live_sessions_run_and_state_are_the_profiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    """The session's run, its orders and its trading state are in the profile's own
    database (where `report`, `resume-trading` and the next CLI run read them); the
    server still shows the session's rows once it has ended."""
    profile_db = live_env(monkeypatch, tmp_path)
    curves = []
    async with emulated(monkeypatch):
        async with live_server(tmp_path) as client:
            sid = await start(client, LIVE_SESSION)
            await until(client, sid, a_second_of_books)
            await client.post(f"/api/sessions/{sid}/stop")
            status = await until(client, sid, ended)
            curves.append(await (await client.get(f"/api/sessions/{sid}/equity")).json())
        async with live_server(tmp_path) as client:  # the next start shows it too
            curves.append(await (await client.get(f"/api/sessions/{sid}/equity")).json())
    for curve in curves:
        assert curve["run_id"] == status["run_id"] and curve["equity"], curve
    with RunStore(profile_db, read_only=True) as store:
        run = store.run(status["run_id"])
        states = {s.portfolio: s.run_id for s in load_trading_states(store.connection)}
        orders = store.connection.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    assert run.status in ("stopped", "completed", "interrupted"), run
    assert states == {"main": status["run_id"]}, states
    assert orders >= 1  # FlipOnce's entry


async def test_a_live_session_goes_on_after_the_server_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    """A server stopped with a live session running goes on with it at its next start, as
    a new run of the account (live runs reconcile with the exchange, they do not resume
    from checkpoints), and holds the account again."""
    live_env(monkeypatch, tmp_path)
    statuses = []
    async with emulated(monkeypatch):
        for _ in range(2):
            async with live_server(tmp_path) as client:
                sid = await the_live_session(client)
                statuses.append(await until(client, sid, a_second_of_books))
                code, out = await cli_bot("--profile", "canary", "--duration", "1s")
                assert code == 2 and "in use by another bot" in out, out
    first, second = statuses
    assert second["status"] == "running" and second["run_id"] != first["run_id"], second


async def test_a_paused_live_portfolio_stays_paused_after_the_server_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    """The trader paused the live session's portfolio; the server restarted and the
    session went on as a new run, whose portfolio traded again (a paper session's
    checkpoint keeps the pause; a live run has none). The pause is kept with the
    session."""
    live_env(monkeypatch, tmp_path)
    statuses = []
    async with emulated(monkeypatch):
        for restart in range(2):
            async with live_server(tmp_path) as client:
                sid = await the_live_session(client)
                status = await until(client, sid, a_second_of_books)
                if not restart:
                    pid = status["portfolios"][0]["id"]
                    paused = await client.post(f"/api/sessions/{sid}/portfolios/{pid}/pause")
                    assert (await paused.json())["paused"] is True
                statuses.append(await until(client, sid, a_second_of_books))
    first, second = statuses
    assert second["run_id"] != first["run_id"], second  # a new run of the account
    assert [p["paused"] for p in second["portfolios"]] == [True], second


async def test_a_second_live_session_on_a_server_of_the_profiles_database_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    """A server started on the profile's own database (`serve --db` of it) held no
    lock for its live sessions (the database lock was its own already): two live
    sessions of the profile traded the account side by side."""
    profile_db = live_env(monkeypatch, tmp_path)
    async with emulated(monkeypatch) as exchange, live_server(tmp_path, profile_db) as client:
        sid = await start(client, LIVE_SESSION)
        await until(client, sid, a_second_of_books)
        refused = await client.post("/api/sessions", json=LIVE_SESSION)
        body = await refused.json()
        if refused.status == 201:  # the defect: two sessions trade the account; stop it
            await until(client, body["session_id"], a_second_of_books)
            await client.post(f"/api/sessions/{body['session_id']}/stop")
        entries = len(exchange.state.orders)
        await client.post(f"/api/sessions/{sid}/stop")
    assert refused.status == 409, body
    assert "in use by another bot" in body["error"] and "\n" not in body["error"], body
    assert entries == 1, "one session's entry alone reached the exchange"


async def test_a_cli_bot_on_another_database_is_refused_while_a_live_session_trades(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    live_env(monkeypatch, tmp_path)
    async with emulated(monkeypatch) as exchange, live_server(tmp_path) as client:
        sid = await start(client, LIVE_SESSION)
        await until(client, sid, a_second_of_books)
        other = str(tmp_path / "other.sqlite")
        code, out = await cli_bot("--profile", "canary", "--db", other, "--duration", "2s")
        entries = len(exchange.state.orders)
        await client.post(f"/api/sessions/{sid}/stop")
    assert code == 2, out
    assert "in use by another bot" in out and "Traceback" not in out, out
    assert entries == 1, "the CLI bot sent no order"


async def test_a_live_session_is_refused_while_the_account_is_halted_in_another_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    """The account's last live run (a CLI bot given --db) halted in its own database: a
    live session, kept in the profile's database, saw no halt there and traded."""
    live_env(monkeypatch, tmp_path)
    other = tmp_path / "other.sqlite"
    async with emulated(monkeypatch) as exchange:
        code, out = await cli_bot("--profile", "canary", "--db", str(other), "--duration", "1s")
        assert code == 0, out
        # the CLI bot's own orders: its sma_cross trades when its second holds a minute's
        # close that crosses the averages (the emulator's clock is the wall clock)
        before = len(exchange.state.orders)
        store_halt(other, "drawdown 6%")
        async with live_server(tmp_path) as client:
            refused = await client.post("/api/sessions", json=LIVE_SESSION)
            body = await refused.json()
            if refused.status == 201:  # the defect: it trades the halted account; stop it
                await until(client, body["session_id"], a_second_of_books)
                await client.post(f"/api/sessions/{body['session_id']}/stop")
        placed = len(exchange.state.orders) - before
    assert refused.status == 409, body
    assert "HALTED" in body["error"] and str(other) in body["error"], body
    assert placed == 0, "the refused session sent no order"
