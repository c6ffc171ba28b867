"""The stream of a session ends with the session: its last status message, then a
clean close (1000), so a client (the dashboard, a script reading until the socket
closes) is not left holding a socket that never says anything again; a stream opened
on a session that has ended already is its hello, then the same close."""

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType

from tests.server.helpers import dev_session, ended, read_until, serving, start

pytestmark = pytest.mark.usefixtures("server_logs")


async def test_the_stream_of_a_session_that_ends_closes(tmp_path: Path) -> None:
    """Before, the socket stayed open after the last status message, forever."""
    async with serving(tmp_path / "server.sqlite") as (client, _):
        sid = await start(client, dev_session("1d"))
        ws = await client.ws_connect(f"/api/sessions/{sid}/stream")
        seen: list[dict[str, Any]] = []
        await read_until(ws, seen, ended)
        async with asyncio.timeout(10):
            closing = await ws.receive()
        assert closing.type is WSMsgType.CLOSE, closing
        assert ws.close_code == 1000, ws.close_code
        assert seen[-1]["data"]["status"] == "completed"
        # opened once it has ended: its hello, with the final status, then the close
        again = await client.ws_connect(f"/api/sessions/{sid}/stream")
        async with asyncio.timeout(10):
            hello = await again.receive()
            closing = await again.receive()
        assert json.loads(hello.data)["data"]["session"]["status"] == "completed"
        assert closing.type is WSMsgType.CLOSE and again.close_code == 1000, closing
