"""One bot trades an exchange account at a time, whatever database it is given (SPEC 9,
10): the database lock alone let a second live bot started with another --db trade the
same account beside the first, blind to its orders and its halt. Dry runs send no
order and are never refused; a killed bot's hold goes with its process."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from perps_emulator import EmulatorServer
from tests.conftest import REPO
from tests.durable.helpers import runs, store_halt
from tests.harness.polling import until
from tests.live.live_helpers import API_KEY, API_SECRET

pytestmark = pytest.mark.integration

FLIP = "tests.live.canary_strategy:FlipOnce"


def live_env(emulator: EmulatorServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    """A canary bot's environment: the emulator's account, logs under `tmp_path`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPS_BOT__")}
    env |= {
        "PERPS_BOT__EXCHANGE__BASE_URL": emulator.base_url,
        "PERPS_BOT__EXCHANGE__API_KEY": API_KEY,
        "PERPS_BOT__EXCHANGE__API_SECRET": API_SECRET,
        "PERPS_BOT__EXCHANGE__POLL_INTERVAL": "100ms",
        "PERPS_BOT__RUN__LOG_DIR": str(tmp_path / "logs"),
        "PERPS_BOT__RUN__DATA_DIR": str(tmp_path / "data"),
    }
    return env | extra


async def bot(
    env: dict[str, str], *args: str, wait: bool = True
) -> "tuple[asyncio.subprocess.Process, list[str]]":
    """`perps-bot --profile canary ARGS` with FlipOnce; with `wait`, its stderr lines
    once it has ended."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "perps_bot", "--profile", "canary", "--strategy", FLIP,
        "--param", "hold=100000", *args, cwd=REPO, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    if not wait:
        return proc, []
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc, [line for line in err.decode().splitlines() if line.strip()]


async def test_a_second_live_bot_on_another_database_is_refused(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    env = live_env(emulator, tmp_path)
    first_db, other_db = tmp_path / "first.sqlite", tmp_path / "other.sqlite"
    first, _ = await bot(env, "--db", str(first_db), "--duration", "60s", wait=False)
    try:
        await until(lambda: bool(emulator.state.orders), timeout=60)  # it trades the account
        second, lines = await bot(env, "--db", str(other_db), "--duration", "2s")
        assert second.returncode == 2, lines
        assert len(lines) == 1 and str(first.pid) in lines[0], lines
        assert "account" in lines[0] and API_KEY not in lines[0], lines
        assert runs(other_db) == [], "the refused bot wrote nothing"
        assert len(emulator.state.orders) == 1, "the refused bot sent no order"
        dry, lines = await bot(env, "--dry-run", "--db", str(other_db), "--duration", "1s")
        assert dry.returncode == 0, lines  # a dry run sends no order: never refused
    finally:
        first.kill()
        await first.wait()
    # the kernel let the killed bot's hold go: the next live bot trades
    after, lines = await bot(env, "--db", str(other_db), "--duration", "1s")
    assert after.returncode == 0, lines


async def test_a_live_bot_with_another_data_folder_is_refused(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    """A bot started from another folder (its relative `data/` another one), or given
    another PERPS_BOT__RUN__DATA_DIR, keeps its own database of the profile: only a lock
    of the account itself keeps it out."""
    env = live_env(emulator, tmp_path)
    first, _ = await bot(env, "--duration", "60s", wait=False)
    try:
        await until(lambda: bool(emulator.state.orders), timeout=60)
        other = tmp_path / "elsewhere"
        other.mkdir()
        second, lines = await bot(
            env | {"PERPS_BOT__RUN__DATA_DIR": str(other)}, "--duration", "2s"
        )
        assert second.returncode == 2 and len(lines) == 1, lines
        assert len(emulator.state.orders) == 1, "the refused bot sent no order"
    finally:
        first.kill()
        await first.wait()


async def test_a_halt_stored_with_another_database_refuses_a_live_bot(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    """The account halted in the database of its last live run; a bot given another
    --db (or data folder) saw no halt there and traded: a new database lifted a halt
    that only resume-trading may lift."""
    env = live_env(emulator, tmp_path)
    halted_db, other_db = tmp_path / "halted.sqlite", tmp_path / "other.sqlite"
    first, lines = await bot(env, "--db", str(halted_db), "--duration", "1s")
    assert first.returncode == 0, lines
    store_halt(halted_db, "drawdown 6%")
    placed = len(emulator.state.orders)
    second, lines = await bot(env, "--db", str(other_db), "--duration", "2s")
    assert second.returncode == 2, lines
    assert len(lines) == 1 and "HALTED" in lines[0] and str(halted_db) in lines[0], lines
    assert "drawdown 6%" in lines[0] and "resume-trading" in lines[0], lines
    assert len(emulator.state.orders) == placed and runs(other_db) == []
    dry, lines = await bot(env, "--dry-run", "--db", str(other_db), "--duration", "1s")
    assert dry.returncode == 0, lines  # a dry run trades no account: never refused
    lifted = subprocess.run(
        [sys.executable, "-m", "perps_bot", "resume-trading", "--db", str(halted_db)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert lifted.returncode == 0, lifted.stderr
    after, lines = await bot(env, "--db", str(other_db), "--duration", "1s")
    assert after.returncode == 0, lines


async def test_a_live_bot_that_would_keep_no_state_is_refused(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    """`run.record: metrics` (the profile key of optimisation trials: an in-memory store)
    on a live run took neither lock, so it traded beside any other bot of the account,
    and kept no order intent, fill or halt past its process."""
    env = live_env(emulator, tmp_path, PERPS_BOT__RUN__RECORD="metrics")
    live, lines = await bot(env, "--duration", "2s")
    assert live.returncode == 2, lines
    assert len(lines) == 1 and "run.record" in lines[0], lines
    assert emulator.state.orders == {}, "the refused bot sent no order"
    dry, lines = await bot(env, "--dry-run", "--duration", "1s")
    assert dry.returncode == 0, lines  # a paper run may keep only its metrics
