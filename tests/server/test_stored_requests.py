"""A server started on a database whose sessions table holds a request it cannot read
(written by another version, or edited by hand): that session ends `failed` with one
line saying why, the server starts and the other sessions go on."""

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSServerHandshakeError

from perps_bot.server.requests import parse_start
from perps_bot.storage import RunStore
from perps_bot.storage import sessions as table
from tests.metrics.metrics_builders import passing_run
from tests.server.helpers import dev_session, serving

pytestmark = pytest.mark.usefixtures("server_logs")

UNREADABLE = [
    ("unknown", json.dumps(dev_session("1d", colour="red")), "unknown field 'colour'"),
    ("notjson", "{not json", "not JSON"),
    ("notadict", "[1, 2]", "the body must be a JSON object"),
    ("badportf", json.dumps(dev_session("1d", portfolios=[{"strategy": "sma_cross",
                                                           "size": 3}])),
     "portfolios[0]: unknown field 'size'"),
    # half a surrogate pair (text that cannot be written as UTF-8): it was taken, and the
    # run failed with a UnicodeEncodeError traceback
    ("surrogat", json.dumps(dev_session("1d", portfolios=[{"strategy": "llm_planner",
                                                           "params": {"model": "x\ud800"}}])),
     "a \\u escape of half a surrogate pair"),
]  # fmt: skip


async def test_a_stored_request_it_cannot_read_fails_that_session_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was a TypeError out of SessionManager.open(): the server did not start at all."""
    monkeypatch.setenv("PERPS_BOT__LLM__BASE_URL", "http://127.0.0.1:9/v1")  # never asked
    db = tmp_path / "server.sqlite"
    good = json.dumps(parse_start(dev_session("120d")).as_json())
    async with serving(db) as (_, manager):
        for sid, request, _ in UNREADABLE:
            table.add_session(manager.store.connection, sid, request)
        table.add_session(manager.store.connection, "good0001", good)
    async with serving(db) as (client, _):
        listed = (await (await client.get("/api/sessions")).json())["sessions"]
        by_id: dict[str, Any] = {s["session_id"]: s for s in listed}
        for sid, _, message in UNREADABLE:
            s = by_id[sid]
            assert s["status"] == "failed", s
            detail = s["detail"]
            assert detail.startswith("cannot go on: its stored request:") and message in detail
            assert "\n" not in detail and len(detail) < 300, detail
        assert by_id["good0001"]["status"] in ("starting", "running"), by_id["good0001"]
        assert (await client.post("/api/sessions/good0001/stop")).status == 200
    async with serving(db) as (client, _):  # once failed, it stays so
        listed = (await (await client.get("/api/sessions")).json())["sessions"]
        assert {s["session_id"]: s["status"] for s in listed} == {
            "unknown": "failed", "notjson": "failed", "notadict": "failed",
            "badportf": "failed", "surrogat": "failed", "good0001": "stopped",
        }  # fmt: skip


DAMAGED = [
    ("paused", "paused", "[oops", "its stored paused: not JSON"),
    ("pausedict", "paused", '{"a": 1}', "its stored paused: expected a JSON list"),
    ("pausenum", "paused", "5", "its stored paused: expected a JSON list"),
    ("flattens", "flattens", "not json", "its stored flattens: not JSON"),
    ("flatstr", "flattens", '{"p0": "x"}', "its stored flattens: expected a JSON object"),
    ("flatlist", "flattened", "[1]", "its stored flattened: expected a JSON object"),
    ("prompts", "prompts", "{", "its stored prompts: not JSON"),
    ("promptab", "prompts", '{"p0": "text"}', "its stored prompts: expected a JSON object"),
    ("nested", "prompts", "[" * 100_000, "its stored prompts: not JSON"),
    ("blob", "flattens", b"\xff\xfe", "its stored flattens: not JSON"),
    ("created", "created_at", "yesterday", "its stored created_at: not a time in ms"),
    ("createdbig", "created_at", 1e300, "its stored created_at: not a time in ms"),
    # a status not one of the table's: shown as it was, and never went on nor failed
    ("statuscap", "status", "Running", "its stored status: 'Running' is not a session status"),
    ("statusend", "status", "Completed", "its stored status: 'Completed' is not a session"),
    ("statusnum", "status", 5, "its stored status: '5' is not a session status"),
]


async def test_a_stored_control_column_it_cannot_read_fails_that_session_only(
    tmp_path: Path,
) -> None:
    """Paused, flattens, flattened and prompts edited by hand to text that is not JSON, or
    JSON of another shape: json.loads / int() / unpacking raised out of load_sessions and
    the server did not start (created_at not a time: every list of the sessions was a
    500, and the session's run failed with a traceback). Now that session ends failed
    with one line; an ended one is shown as it was; the others go on. A status that is
    not one of the table's (edited by hand: 'Running') was shown as it stood, the
    session neither going on nor failed: it fails now, saying so."""
    db = tmp_path / "server.sqlite"
    good = json.dumps(parse_start(dev_session("120d")).as_json())
    async with serving(db) as (_, manager):
        db_ = manager.store.connection
        for sid, column, value, _ in DAMAGED:
            table.add_session(db_, sid, good)
            db_.execute(f"UPDATE sessions SET {column}=? WHERE session_id=?", (value, sid))
        table.add_session(db_, "ended001", good)
        table.end_session(db_, "ended001", "stopped", None)
        db_.execute("UPDATE sessions SET paused='[' WHERE session_id='ended001'")
        table.add_session(db_, "good0001", good)
    async with serving(db) as (client, _):
        listed = (await (await client.get("/api/sessions")).json())["sessions"]
        by_id: dict[str, Any] = {s["session_id"]: s for s in listed}
        for sid, _, _, message in DAMAGED:
            s = by_id[sid]
            assert s["status"] == "failed", s
            detail = s["detail"]
            assert detail.startswith(f"cannot go on: {message}"), detail
            assert "\n" not in detail and len(detail) < 300, detail
        assert by_id["ended001"]["status"] == "stopped", by_id["ended001"]
        assert by_id["good0001"]["status"] in ("starting", "running"), by_id["good0001"]
        assert (await client.post("/api/sessions/good0001/stop")).status == 200
    async with serving(db) as (client, _):  # once failed, it stays so
        listed = (await (await client.get("/api/sessions")).json())["sessions"]
        statuses = {s["session_id"]: s["status"] for s in listed}
        assert statuses == {sid: "failed" for sid, *_ in DAMAGED} | {
            "ended001": "stopped", "good0001": "stopped"}  # fmt: skip


async def test_a_session_whose_run_is_not_in_the_database_fails_that_session_only(
    tmp_path: Path,
) -> None:
    """A running session whose run the database does not have (it was replaced, a live
    session's profile names another database, the row was edited): StoreError out of
    SessionManager.open() and the server did not start."""
    db = tmp_path / "server.sqlite"
    good = json.dumps(parse_start(dev_session("120d")).as_json())
    async with serving(db) as (_, manager):
        for sid in ("gone0001", "good0001"):
            table.add_session(manager.store.connection, sid, good)
        table.set_session_run(manager.store.connection, "gone0001", "20260101T000000-dev-abcdef")
    async with serving(db) as (client, _):
        listed = (await (await client.get("/api/sessions")).json())["sessions"]
        by_id: dict[str, Any] = {s["session_id"]: s for s in listed}
        assert (by_id["gone0001"]["status"], by_id["gone0001"]["detail"]) == (
            "failed",
            "cannot go on: its run 20260101T000000-dev-abcdef is not in its database",
        )
        assert by_id["good0001"]["status"] in ("starting", "running"), by_id["good0001"]
        assert (await client.post("/api/sessions/good0001/stop")).status == 200


async def _an_ended_live_session_and_a_dev_one(db: Path) -> None:
    """Sessions stored in `db`: live0001, a canary session that ended (its run in the
    profile's database), and good0001, a dev session not started yet."""
    live = {"profile": "canary", "portfolios": [{"strategy": "sma_cross"}]}
    async with serving(db) as (_, manager):
        connection = manager.store.connection
        table.add_session(connection, "live0001", json.dumps(parse_start(live).as_json()))
        table.set_session_run(connection, "live0001", "20260101T000000-canary-abcdef")
        table.end_session(connection, "live0001", "stopped", None)
        table.add_session(
            connection, "good0001", json.dumps(parse_start(dev_session("120d")).as_json())
        )


async def test_an_ended_live_session_whose_database_is_damaged_does_not_stop_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ended live session is shown from the profile's database: a damaged one (or
    another file put there) raised StoreFault out of SessionManager.open(), and the
    server did not start at all; the session is now shown from the server's own
    database alone, and the others go on."""
    monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "perps_bot.canary.sqlite").write_text("not a database")
    db = tmp_path / "server.sqlite"
    await _an_ended_live_session_and_a_dev_one(db)
    async with serving(db) as (client, _):
        shown = await client.get("/api/sessions/live0001/portfolio")
        assert shown.status == 200, await shown.text()
        assert (await shown.json())["portfolios"] == []
        assert (await client.get("/status")).status == 200
        listed = (await (await client.get("/api/sessions")).json())["sessions"]
        statuses = {s["session_id"]: s["status"] for s in listed}
        assert statuses["live0001"] == "stopped" and statuses["good0001"] in ("starting", "running")
        assert (await client.post("/api/sessions/good0001/stop")).status == 200


async def test_a_live_session_database_damaged_while_the_server_runs_is_a_503(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live session's run is shown from the profile's database: damaged once the
    server had started, a read of that session that reached the damage (its equity)
    was a 500 with a traceback in the log (its stream, with ?points=, an upgrade then
    an HTTP answer in the socket). It is a 503 naming the database; the other sessions
    read as before."""
    monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    profile_db = tmp_path / "data" / "perps_bot.canary.sqlite"
    with RunStore(profile_db) as store:  # the session's run, with its trades
        passing_run(store, "20260101T000000-canary-abcdef", kind="canary", profile="canary")
    db = tmp_path / "server.sqlite"
    await _an_ended_live_session_and_a_dev_one(db)
    async with serving(db) as (client, _):
        assert (await client.get("/api/sessions/live0001/trades")).status == 200
        size = profile_db.stat().st_size
        with profile_db.open("r+b") as damaged:  # every page, in place (the reader has it open)
            damaged.write(b"\xa5" * size)
        for path in ("equity", "equity?portfolio=sma_cross"):
            resp = await client.get(f"/api/sessions/live0001/{path}")
            assert resp.status == 503, (path, await resp.text())
            error = (await resp.json())["error"]
            assert str(profile_db) in error and "\n" not in error, error
        with pytest.raises(WSServerHandshakeError) as refused:  # not a 101, then garbage
            await client.ws_connect("/api/sessions/live0001/stream?points=10")
        assert refused.value.status == 503
        assert (await client.get("/api/sessions/good0001/trades")).status == 200
        status = await client.get("/status")  # one session's database: not the whole answer
        assert status.status == 200, await status.text()
        shown = {x["session_id"]: x["portfolio"] for x in (await status.json())["sessions"]}
        assert str(profile_db) in shown["live0001"]["error"], shown
        assert "error" not in shown["good0001"], shown
        assert (await client.get("/api/sessions")).status == 200
        assert (await client.post("/api/sessions/good0001/stop")).status == 200
