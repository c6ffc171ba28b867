"""A server started on a database whose sessions table holds a request it cannot read
(written by another version, or edited by hand): that session ends `failed` with one
line saying why, the server starts and the other sessions go on."""

import json
from pathlib import Path
from typing import Any

import pytest

from perps_bot.server.requests import parse_start
from perps_bot.storage import sessions as table
from tests.server.helpers import dev_session, serving

pytestmark = pytest.mark.usefixtures("server_logs")

UNREADABLE = [
    ("unknown", json.dumps(dev_session("1d", colour="red")), "unknown field 'colour'"),
    ("notjson", "{not json", "not JSON"),
    ("notadict", "[1, 2]", "the body must be a JSON object"),
    ("badportf", json.dumps(dev_session("1d", portfolios=[{"strategy": "sma_cross",
                                                           "size": 3}])),
     "portfolios[0]: unknown field 'size'"),
]  # fmt: skip


async def test_a_stored_request_it_cannot_read_fails_that_session_only(tmp_path: Path) -> None:
    """It was a TypeError out of SessionManager.open(): the server did not start at all."""
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
            "badportf": "failed", "good0001": "stopped",
        }  # fmt: skip
