"""Alerts of the sessions of a server (SPEC 12: sent off the trading path): a session
that ends with alerts its target never takes waits for them (alerts.flush_timeout)
without holding the server's event loop, which every other session trades on and
every request is answered on."""

import asyncio
import contextlib
import logging
import sqlite3
from pathlib import Path

import pytest

from perps_bot.config import AlertsConfig, load_settings
from perps_bot.orchestrator.runner import run_bot
from perps_bot.server.manager import SessionManager
from tests.harness.alert_receiver import alert_receiver
from tests.server.helpers import ended, read_until, serving, trading

pytestmark = pytest.mark.usefixtures("server_logs")


async def test_a_session_waiting_for_its_alerts_does_not_stall_the_server(
    tmp_path: Path, silent_target: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"json://127.0.0.1:{silent_target}?rto=30&cto=30"
    monkeypatch.setenv("PERPS_BOT__ALERTS__URLS", f'["{url}"]')
    monkeypatch.setenv("PERPS_BOT__ALERTS__FLUSH_TIMEOUT", "6s")
    lags: list[float] = []

    async def probe() -> None:  # how late the loop runs a callback due every 50 ms
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + 0.05
            await asyncio.sleep(0.05)
            lags.append(loop.time() - due)

    async with serving(tmp_path / "server.sqlite") as (client, _):
        _, ws, seen = await trading(client, "1d")
        watching = asyncio.create_task(probe())
        await read_until(ws, seen, ended)
        watching.cancel()
    assert seen[-1]["data"]["status"] == "completed"
    # the run's end waited up to 6 s for the alerts: on another thread, not on the loop
    assert max(lags) < 3.0, max(lags)


def _alerts_to(monkeypatch: pytest.MonkeyPatch, port: int, events: str) -> None:
    """Send the runs' alerts of `events` (a JSON list) to the local receiver on `port`."""
    monkeypatch.setenv("PERPS_BOT__ALERTS__URLS", f'["json://127.0.0.1:{port}"]')
    monkeypatch.setenv("PERPS_BOT__ALERTS__ON", events)


async def test_a_session_stopped_through_the_api_sends_one_run_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's end goes once, with the status its run is stored with and the reason;
    a server started again on the database sends nothing more for it."""
    with alert_receiver() as (port, received):
        _alerts_to(monkeypatch, port, '["run_end", "halt"]')
        db = tmp_path / "server.sqlite"
        async with serving(db) as (client, _):
            sid, ws, seen = await trading(client, "365d")
            assert (await client.post(f"/api/sessions/{sid}/stop")).status == 200
            await read_until(ws, seen, ended)
            run_id = seen[-1]["data"]["run_id"]
        async with serving(db):
            pass
    ends = [r["message"] for r in received if r["title"].endswith(": run ended")]
    assert len(ends) == 1, received
    assert ends[0].startswith(f"run {run_id} ended: interrupted (stopped by the session API)")


async def test_a_session_the_server_stops_says_it_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that stops interrupts its sessions, which go on at its next start: the
    run_end said only `interrupted` (a trader read the session was over); it now says
    why and that it goes on, and the session's end later is its own run_end."""
    with alert_receiver() as (port, received):
        _alerts_to(monkeypatch, port, '["run_end"]')
        db = tmp_path / "server.sqlite"
        async with serving(db) as (client, _):
            sid, ws, seen = await trading(client, "365d")
        async with serving(db) as (client, _):  # it goes on: stopped through the API now
            ws = await client.ws_connect(f"/api/sessions/{sid}/stream")
            await read_until(ws, seen, lambda m: m["type"] == "fill")
            assert (await client.post(f"/api/sessions/{sid}/stop")).status == 200
            await read_until(ws, seen, ended)
    ends = [r["message"] for r in received]
    assert len(ends) == 2, ends
    assert "ended: interrupted (the server stopped: it goes on at the next start)" in ends[0]
    assert "ended: interrupted (stopped by the session API)" in ends[1]


async def _crashed_run(tmp: Path) -> tuple[Path, str]:
    """A database holding one run as a killed process leaves it (`running`, its pid
    gone): (the database, the run)."""
    run = {"dev_fast": True, "duration": "2h", "seed": 5, "log_dir": str(tmp / "logs"),
           "data_dir": str(tmp / "data"), "live_view": False}  # fmt: skip
    result = await run_bot(load_settings("dev", {"run": run}), progress=False)
    with contextlib.closing(sqlite3.connect(result.db_path)) as con, con:
        con.execute("UPDATE runs SET status='running', pid=NULL, host=NULL")
    return result.db_path, result.run_id


async def test_a_run_the_server_finds_crashed_at_its_start_is_alerted(tmp_path: Path) -> None:
    """`perps-bot serve` marked the runs a dead process left running crashed with a
    WARNING only: with alert URLs set, no alert told the trader. Its start now sends
    their run_end (crashed), once."""
    db, run_id = await _crashed_run(tmp_path)
    with alert_receiver() as (port, received):
        alerts = AlertsConfig(urls=[f"json://127.0.0.1:{port}"], on=["run_end"])
        for _ in range(2):  # the second start finds nothing crashed
            manager = SessionManager(db, alerts=alerts)
            try:
                await manager.open()
            finally:
                await manager.close()
    (crashed,) = [r for r in received if f"run {run_id} " in r["message"]]
    assert crashed["title"] == "perps-bot serve: run ended"
    assert crashed["message"].startswith(f"run {run_id} ended: crashed"), crashed
    assert "the session server" in crashed["message"]


async def test_a_run_found_crashed_without_alert_urls_is_logged_as_not_alerted(
    tmp_path: Path,
) -> None:
    """Without alert URLs nothing can be sent: the log says that nobody was told."""
    db, run_id = await _crashed_run(tmp_path)
    lines: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("perps_bot.alerts").addHandler(handler)
    manager = SessionManager(db)
    try:
        await manager.open()
    finally:
        await manager.close()
        logging.getLogger("perps_bot.alerts").removeHandler(handler)
    (line,) = [text for text in lines if "no alert" in text]
    assert run_id in line and "alerts.urls" in line
