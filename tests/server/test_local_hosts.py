"""DNS rebinding: a web page whose own domain is made to resolve to 127.0.0.1 reaches a
loopback server from the victim's browser as a same-origin page, so no CORS rule
stops it; only the `Host` header (the page's domain, which the browser sends and a
page cannot change) tells it apart. A server bound to loopback answers only to
localhost, 127.0.0.1 and [::1] (any port; PERPS_BOT__SERVER__ALLOWED_HOSTS adds
names), every path included: the API, the stream, /metrics, the dashboard."""

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest

from perps_bot.server.hosts import HOSTS_ENV, allowed_hosts
from tests.server.helpers import dev_session, serve_process, serving, start

pytestmark = pytest.mark.usefixtures("server_logs")


FOREIGN = ["evil.example", "evil.example:8787", "127.0.0.1.evil.example", "localhost.evil:80",
           "0.0.0.0:8787", "192.168.1.20", "[::2]:8787", "::1", "local host"]  # fmt: skip
LOCAL = ["localhost", "LOCALHOST:8787", "127.0.0.1", "127.0.0.1:8787", "[::1]", "[::1]:8787"]
PATHS = ["/", "/static/dashboard.js", "/static/plotly.min.js", "/health", "/status", "/metrics",
         "/api/sessions", "/api/nothing"]  # fmt: skip


async def _refused(
    resp: aiohttp.ClientResponse, host: str, names: str = "localhost, 127.0.0.1 or [::1]"
) -> None:
    assert resp.status == 403, (host, resp.status)
    error = (await resp.json())["error"]
    assert error.startswith(f"refused Host {host!r}: "), error
    assert f"answers to {names} (any port; {HOSTS_ENV} adds names)" in error, error
    assert "\n" not in error and len(error) < 300


async def test_a_request_naming_another_host_is_refused_on_every_path(tmp_path: Path) -> None:
    """Before, a rebound page read every session and started one (201)."""
    async with serving(tmp_path / "server.sqlite") as (client, manager):
        sid = await start(client, dev_session("365d"))
        for host in FOREIGN:
            for path in PATHS:
                await _refused(await client.get(path, headers={"Host": host}), host)
            for method, path in (("POST", "/api/sessions"), ("POST", f"/api/sessions/{sid}/stop"),
                                 ("POST", f"/api/sessions/{sid}/portfolios/sma_cross/flatten"),
                                 ("PUT", f"/api/sessions/{sid}/strategy")):  # fmt: skip
                resp = await client.request(method, path, json=dev_session("1d"),
                                            headers={"Host": host})  # fmt: skip
                await _refused(resp, host)
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect(f"/api/sessions/{sid}/stream", headers={"Host": host})
            assert refused.value.status == 403
        assert list(manager.sessions) == [sid]
        view = await (await client.get(f"/api/sessions/{sid}")).json()
        assert view["status"] in ("starting", "running")
        assert all(p["paused"] is False for p in view.get("portfolios", []))
        await client.post(f"/api/sessions/{sid}/stop")


async def test_the_local_names_reach_everything(tmp_path: Path) -> None:
    async with serving(tmp_path / "server.sqlite") as (client, _):
        for host in LOCAL:
            for path in PATHS[:-1]:
                resp = await client.get(path, headers={"Host": host})
                assert resp.status == 200, (host, path, await resp.text())
        sid = await start(client, dev_session("365d"))
        ws = await client.ws_connect(f"/api/sessions/{sid}/stream", headers={"Host": "localhost"})
        assert (await ws.receive_json())["type"] == "hello"
        await ws.close()
        # HTTP/1.0 without Host (no browser sends that: it always names the page's host)
        reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
        writer.write(b"GET /health HTTP/1.0\r\n\r\n")
        status = (await reader.readline()).decode()
        writer.close()
        assert " 200 " in status, status
        await client.post(f"/api/sessions/{sid}/stop")


async def test_allowed_hosts_add_names_and_a_bind_beyond_loopback_checks_none(
    tmp_path: Path,
) -> None:
    """Behind a proxy that keeps the client's Host the server answers to the names in
    PERPS_BOT__SERVER__ALLOWED_HOSTS; bound beyond loopback it answers to any name (it
    is reached by any of the machine's names, and the token keeps pages out)."""
    assert allowed_hosts("127.0.0.1", {HOSTS_ENV: " Bot.Lan , box:9000,,"}) == frozenset(
        {"bot.lan", "box"}
    )
    assert allowed_hosts("localhost", {}) == frozenset()
    assert allowed_hosts("0.0.0.0", {HOSTS_ENV: "bot.lan"}) is None
    async with serving(tmp_path / "a.sqlite", hosts=allowed_hosts("::1", {HOSTS_ENV: "bot.lan"})
                       ) as (client, _):  # fmt: skip
        assert (await client.get("/health", headers={"Host": "BOT.lan:443"})).status == 200
        resp = await client.get("/health", headers={"Host": "evil.lan"})
        await _refused(resp, "evil.lan", "localhost, 127.0.0.1, [::1] or bot.lan")
    async with serving(tmp_path / "b.sqlite", token="t", hosts=None) as (client, _):
        resp = await client.get("/api/sessions", headers={"Host": "evil.example"})
        assert resp.status == 401
        auth = {"Host": "my-box.lan:8787", "Authorization": "Bearer t"}
        assert (await client.get("/api/sessions", headers=auth)).status == 200


def _get(port: int, host: str) -> str:
    """GET /api/sessions naming `host`, as curl sends it: the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"GET /api/sessions HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                     .encode())  # fmt: skip
        return sock.makefile("rb").read().decode()


def test_perps_bot_serve_refuses_another_host(tmp_path: Path) -> None:
    """The check as `perps-bot serve` (loopback by default) wires it."""
    proc, port = serve_process(tmp_path / "server.sqlite", tmp_path)
    try:
        refused, local = _get(port, "evil.example"), _get(port, f"localhost:{port}")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert refused.startswith("HTTP/1.1 403 "), refused
    assert "application/json" in refused and '"error": "refused Host \'evil.example\': ' in refused
    assert local.startswith("HTTP/1.1 200 ") and '{"sessions": []}' in local, local
