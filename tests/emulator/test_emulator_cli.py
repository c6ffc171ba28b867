"""`perps-bot emulator`: announces the base URL and env var, refuses non-loopback hosts,
and stops cleanly on Ctrl-C (SIGINT) without a traceback."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import aiohttp
import typer
from typer.testing import CliRunner

from perps_bot.cli.emulator import register, serve
from perps_bot.emulator import EmulatorServer

REPO = Path(__file__).resolve().parents[2]
APP_SCRIPT = textwrap.dedent(
    """
    import typer
    from perps_bot.cli.emulator import register
    app = typer.Typer(add_completion=False)
    @app.callback()
    def root() -> None: ...
    register(app)
    app()
    """
)


def _app() -> typer.Typer:
    app = typer.Typer(add_completion=False)

    @app.callback()
    def root() -> None: ...

    register(app)
    return app


def test_refuses_a_public_host() -> None:
    result = CliRunner().invoke(_app(), ["emulator", "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 2
    assert "not a loopback address" in result.output
    assert "Traceback" not in result.output


async def test_serve_announces_base_url_and_env_var_then_stops() -> None:
    lines: list[str] = []
    stop = asyncio.Event()
    server = EmulatorServer(port=0)
    task = asyncio.create_task(serve(server, stop, lines.append))
    while not lines and not task.done():
        await asyncio.sleep(0)  # yield until serve() has started and printed
    assert f"PERPS_BOT__EXCHANGE__BASE_URL={server.base_url}" in "\n".join(lines)
    async with (
        aiohttp.ClientSession(trust_env=False) as session,
        session.get(server.base_url + "/fapi/v1/ping") as response,
    ):
        assert response.status == 200
    stop.set()
    await task
    assert not server.running


def test_ctrl_c_stops_cleanly() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-c", APP_SCRIPT, "emulator", "--port", "0", "--symbols", "BTCUSDT"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # blocks until the server listens
        assert "listening on http://127.0.0.1:" in first
        env_line = next(line for line in iter(proc.stdout.readline, "") if "BASE_URL" in line)
        assert "export PERPS_BOT__EXCHANGE__BASE_URL=http://127.0.0.1:" in env_line
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "emulator stopped" in out
    assert "Traceback" not in err
