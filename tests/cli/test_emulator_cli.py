"""`perps-bot emulator`: announces the base URL and env var, refuses non-loopback hosts,
stops cleanly on Ctrl-C (SIGINT) without a traceback, and says in one line that the
emulator is test tooling where the perps_emulator package is not installed."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from pathlib import Path

import aiohttp
import pytest

from perps_bot.cli.app import main
from perps_bot.cli.emulator import serve
from perps_emulator import EmulatorServer

REPO = Path(__file__).resolve().parents[2]
APP_SCRIPT = textwrap.dedent(
    """
    import sys
    from perps_bot.cli.app import main
    main(sys.argv[1:])
    """
)


NOT_INSTALLED_LINE = (
    "perps-bot: emulator: the exchange emulator is test tooling; "
    "install the dev environment (poetry install)"
)


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    """Run the real entry point in-process: (exit code, non-empty stderr lines)."""
    with pytest.raises(SystemExit) as stopped:
        main(list(args))
    err = capsys.readouterr().err
    code = stopped.value.code
    assert isinstance(code, int)
    return code, [line for line in err.splitlines() if line.strip()]


def test_refuses_a_public_host(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _main(capsys, "emulator", "--host", "0.0.0.0", "--port", "0")
    assert code == 2
    assert len(lines) == 1 and "not a loopback address" in lines[0], lines


def test_without_the_emulator_package_it_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "perps_emulator", None)  # import fails as if absent
    code, lines = _main(capsys, "emulator", "--port", "0")
    assert code == 2
    assert lines == [NOT_INSTALLED_LINE]


class _BrokenEmulator(MetaPathFinder):
    """Finds perps_emulator but fails like an installed copy missing a dependency."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> ModuleSpec:
        if name == "perps_emulator":
            raise ModuleNotFoundError("No module named 'aiohttp'", name="aiohttp")
        return None  # type: ignore[return-value]


def test_a_broken_emulator_install_is_not_reported_as_absent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from perps_bot.cli.emulator import _import_emulator

    for name in [m for m in sys.modules if m.split(".")[0] == "perps_emulator"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_BrokenEmulator(), *sys.meta_path])
    with pytest.raises(ModuleNotFoundError) as raised:
        _import_emulator()
    assert raised.value.name == "aiohttp"


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
        [
            *(sys.executable, "-c", APP_SCRIPT, "emulator", "--port", "0"),
            *("--symbols", "BTCUSDT", "--liquidation"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # blocks until the server listens
        assert "listening on http://127.0.0.1:" in first
        assert "liquidation on" in proc.stdout.readline()
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
