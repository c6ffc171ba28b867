"""A session server on 127.0.0.1 for the API, stream and dashboard tests: in this
process (aiohttp's test server: real HTTP on a free port) or as a real `perps-bot
serve` process (to kill it with SIGKILL)."""

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import ClientWebSocketResponse
from aiohttp.test_utils import TestClient, TestServer

from perps_bot.server import SessionManager, create_app
from tests.conftest import REPO
from tests.durable.helpers import env


#: a dev session on the simulated clock: two strategies, the same seed every time
def dev_session(duration: str, **extra: Any) -> dict[str, Any]:
    return {
        "profile": "dev",
        "portfolios": [
            {"strategy": "sma_cross", "params": {"fast": 3, "slow": 8}},
            {"strategy": "mean_reversion", "capital": 40_000},
        ],
        "seed": 5,
        "duration": duration,
        "dev_fast": True,
    } | extra


@asynccontextmanager
async def serving(
    db: Path, *, token: str | None = None, hosts: frozenset[str] | None = frozenset()
) -> AsyncIterator[tuple[TestClient[Any, Any], SessionManager]]:
    manager = SessionManager(db)
    try:
        await manager.open()
        server = TestServer(create_app(manager, token=token, hosts=hosts), host="127.0.0.1")
        async with TestClient(server) as client:
            yield client, manager
    finally:
        await manager.close()


async def start(client: TestClient[Any, Any], body: dict[str, Any]) -> str:
    resp = await client.post("/api/sessions", json=body)
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["session_id"])


async def read_until(
    ws: ClientWebSocketResponse, seen: list[dict[str, Any]], done: Any, timeout: float = 240
) -> None:
    """Collect stream messages into `seen` until `done(message)` (or fail on timeout)."""
    async with asyncio.timeout(timeout):
        async for msg in ws:
            message = json.loads(msg.data)
            seen.append(message)
            if done(message):
                return
    raise AssertionError(f"the stream ended first: {seen[-3:]}")


async def trading(
    client: TestClient[Any, Any], duration: str
) -> tuple[str, ClientWebSocketResponse, list[dict[str, Any]]]:
    """A dev session started and read from its stream until its first fill: (session
    id, the stream, the messages seen)."""
    sid = await start(client, dev_session(duration))
    ws = await client.ws_connect(f"/api/sessions/{sid}/stream")
    seen: list[dict[str, Any]] = []
    await read_until(ws, seen, lambda m: m["type"] == "fill")
    return sid, ws, seen


def ended(message: dict[str, Any]) -> bool:
    return message["type"] == "status" and message["data"]["status"] not in ("starting", "running")


def serve_process(db: Path, tmp: Path) -> tuple["subprocess.Popen[str]", int]:
    """`perps-bot serve --port 0` as a real process; (process, the port it bound)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "perps_bot", "serve", "--port", "0", "--db", str(db)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(tmp),
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if found is None:
        proc.kill()
        raise AssertionError(f"no address in {line!r}: {proc.stderr.read() if proc.stderr else ''}")
    return proc, int(found.group(1))


async def cli_bot(*args: str) -> tuple[int, str]:
    """`perps-bot ARGS` as its own process, in this test's environment (exit code,
    stdout and stderr together)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "perps_bot", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=dict(os.environ),
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode()
