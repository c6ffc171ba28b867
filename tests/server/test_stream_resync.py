"""A stream subscriber that falls behind (a page on a slow link, a busy client) loses
the messages its bounded queue cannot hold, never the run its speed (SPEC 11, 12);
it is then sent a new hello, so its view (session, portfolios, last trades, curves)
is whole again instead of silently missing what was dropped."""

import asyncio
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.server.helpers import dev_session, read_until, serving, start

pytestmark = pytest.mark.usefixtures("server_logs")

KEY = ("portfolio", "symbol", "side", "size", "entry_price", "exit_price", "exit_reason")
SHOWN = 50  # the page's last trades


def _page_trades(seen: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The last trades as the dashboard builds them: a hello's replace, a trade adds."""
    trades: list[tuple[Any, ...]] = []
    for m in seen:
        if m["type"] == "hello":
            trades = [tuple(t[k] for k in KEY) for t in m["data"]["trades"]]
        elif m["type"] == "trade":
            data = m["data"] | {"portfolio": m["portfolio"]}
            trades.append(tuple(data[k] for k in KEY))
    return trades[-SHOWN:]


def _page_fills(seen: list[dict[str, Any]]) -> int:
    """The page's fill count: a hello's total, then one per fill or liquidation."""
    fills = 0
    for m in seen:
        if m["type"] == "hello":
            fills = m["data"]["fills"]
        elif m["type"] in ("fill", "liquidation"):
            fills += 1
    return fills


def _status(message: dict[str, Any]) -> str | None:
    """The session's status a message tells (a status message or a hello)."""
    if message["type"] == "hello":
        return str(message["data"]["session"]["status"])
    return str(message["data"]["status"]) if message["type"] == "status" else None


def _small_window(addr_info: Any) -> socket.socket:
    """A client socket with a small receive buffer: the kernel absorbs little of what the
    server sends (loopback's buffers grow to megabytes), so not reading for a while
    fills the subscriber's queue at once."""
    family, type_, proto, _, _ = addr_info
    sock = socket.socket(family=family, type=type_, proto=proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


async def test_a_subscriber_that_fell_behind_gets_a_new_hello(tmp_path: Path) -> None:
    """The hello carries the session's fills so far: the page's count went on from what
    it had seen, short of every fill dropped before the new hello."""
    async with serving(tmp_path / "server.sqlite") as (client, manager):
        sid = await start(client, dev_session("20d"))
        url = f"http://127.0.0.1:{client.port}/api/sessions/{sid}/stream?trades={SHOWN}&points=20"
        connector = aiohttp.TCPConnector(socket_factory=_small_window)
        async with aiohttp.ClientSession(connector=connector) as slow:
            ws = await slow.ws_connect(url)
            seen: list[dict[str, Any]] = []
            await read_until(ws, seen, lambda m: m["type"] == "hello")
            # read nothing until the session is over: its thousands of fills and trades
            # fill the socket's buffers, then the subscriber's queue (what it sends keeps
            # the server from taking it for gone: heartbeat)
            async with asyncio.timeout(240):
                while (await (await client.get(f"/api/sessions/{sid}")).json())[
                    "status"
                ] == "running":
                    await ws.send_str("still here")
                    await asyncio.sleep(0.2)
            await read_until(ws, seen, lambda m: _status(m) == "completed", timeout=60)
        stored = await (await client.get(f"/api/sessions/{sid}/trades?limit={SHOWN}")).json()
        run_id = (await (await client.get(f"/api/sessions/{sid}")).json())["run_id"]
        fills = sum(len(manager.store.fills(c.run_id)) for c in manager.store.children(run_id))
    hellos = [m for m in seen if m["type"] == "hello"]
    assert len(hellos) >= 2, "the subscriber fell behind, and was told"
    assert _page_trades(seen) == [tuple(t[k] for k in KEY) for t in stored["trades"]]
    assert _page_fills(seen) == fills > 0
