"""Alerts of the sessions of a server (SPEC 12: sent off the trading path): a session
that ends with alerts its target never takes waits for them (alerts.flush_timeout)
without holding the server's event loop, which every other session trades on and
every request is answered on."""

import asyncio
from pathlib import Path

import pytest

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
