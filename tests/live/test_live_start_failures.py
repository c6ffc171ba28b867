"""A live start the exchange refuses after markets loaded (balance, positions, open orders
failing past every retry; credentials refused) ends the run with one line saying why and
exit code 1: no 'internal error' with a traceback, no failed run that never says why.
So does a start whose reconciliation cannot read the account: trading on books never
compared with the exchange's could double a position the exchange already holds."""

import asyncio
import os
import sys
from pathlib import Path

import pytest

from perps_emulator import EmulatorServer, Fault
from tests.live.live_helpers import API_KEY, API_SECRET

pytestmark = pytest.mark.integration

APP = "import sys; from perps_bot.cli.app import main; main(sys.argv[1:])"


async def _live_cli(server: EmulatorServer, tmp_path: Path) -> tuple[int, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPS_BOT__")}
    env |= {
        "PERPS_BOT__EXCHANGE__BASE_URL": server.base_url,
        "PERPS_BOT__EXCHANGE__API_KEY": API_KEY,
        "PERPS_BOT__EXCHANGE__API_SECRET": API_SECRET,
        "PERPS_BOT__EXCHANGE__BACKOFF_BASE": "10ms",
        "PERPS_BOT__EXCHANGE__BACKOFF_MAX": "20ms",
        "PERPS_BOT__RUN__LOG_DIR": str(tmp_path / "logs"),
        "PERPS_BOT__RUN__DATA_DIR": str(tmp_path / "data"),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", APP, "--profile", "canary", "--duration", "3s",
        cwd=Path(__file__).resolve().parents[2], env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, [line for line in err.decode().splitlines() if line.strip()]


async def test_an_exchange_failing_at_start_up_ends_the_run_saying_why(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.inject(Fault("status", method="GET", path="/fapi/v3/account", count=10**6))
    code, lines = await _live_cli(emulator, tmp_path)
    assert code == 1, lines
    assert len(lines) == 1, lines
    assert "internal error" not in lines[0] and "Traceback" not in lines[0]
    assert "failed: the exchange is not answering at start-up" in lines[0], lines
    assert emulator.state.orders == {}


async def test_a_start_up_reconciliation_that_cannot_read_the_account_stops_the_run(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    # the venue's own start-up read passes; the reconciliation's read fails past retries
    emulator.inject(Fault("status", method="GET", path="/fapi/v3/account", count=10**6, after=1))
    code, lines = await _live_cli(emulator, tmp_path)
    assert code == 1, lines
    assert len(lines) == 1, lines
    assert "internal error" not in lines[0] and "Traceback" not in lines[0]
    assert "failed: cannot reconcile with the exchange at start-up" in lines[0], lines
    assert emulator.state.orders == {}


async def test_refused_credentials_at_start_up_are_named_on_stderr(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.inject(
        Fault("error_code", method="GET", path="/fapi/v3/account", code=-2015, count=10**6)
    )
    code, lines = await _live_cli(emulator, tmp_path)
    assert code == 1, lines
    assert len(lines) == 1 and "exchange refused the API credentials" in lines[0], lines
    assert API_KEY not in lines[0]
