"""`drift --live latest` (SPEC 14: "--live: the live (or dry) run, or 'latest'") is the
latest live or dry run. Measured on main it was the latest run of any kind: drift stores
its replay in the live run's database, so after the first `drift --live latest` the
latest run was that replay, and the second was refused ("run R is a replay run: drift
compares a live or dry run", exit 2)."""

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perps_bot.cli.app import app
from perps_emulator import EmulatorServer
from tests.drift.dry import dry_run, filled

pytestmark = pytest.mark.integration


async def test_drift_of_the_latest_run_is_the_latest_live_or_dry_run(
    in_repo: Path, run_dirs: dict[str, str], tmp_path: Path
) -> None:
    db = str(tmp_path / "canary.sqlite")
    async with EmulatorServer(symbols=("ETHUSDT",), seed=6, tick_interval_s=0.1) as server:
        live = await dry_run(server, run_dirs, db=db, until=filled)
    assert live.status == "completed"

    def drift() -> tuple[int, str, str]:
        done = CliRunner().invoke(app, ["drift", "--db", db, "--live", "latest", "--format",
                                        "json"])  # fmt: skip
        return done.exit_code, done.stdout, done.stderr

    replays = []
    for _ in range(2):  # the second one after the first one's replay
        code, out, err = await asyncio.to_thread(drift)
        assert code == 0, err
        assert json.loads(out)["live_run"] == live.run_id
        replays.append(json.loads(out)["replay_run"])
    assert replays[0] != replays[1]
