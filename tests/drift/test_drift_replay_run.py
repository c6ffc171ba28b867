"""`drift --live RUN --replay RUN2` (SPEC 14) compares a live run with a replay of its own
capture, and stores the result where `promote --to prod` reads it. Measured on main,
`--replay` took any run: the live run itself gave signal agreement 1.0, no slippage
drift and no tracking error, exit 0, stored as the live run's drift: the prod gate
passed on a comparison of the run with itself. `--capture DIR` took another run's
capture: its replay and arrival mids were measured against this run's orders. Now a run
that is not a replay of the live run, or a capture of another run, is one line and exit
2, and nothing is stored; so is a replay that did not complete (it measured paper on part
of the capture). An --out that cannot be written is one line and exit 2 too."""

import asyncio
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perps_bot.cli.app import app
from perps_bot.storage import RunStore
from perps_emulator import EmulatorServer
from tests.drift.dry import dry_run, filled

pytestmark = pytest.mark.integration


async def test_drift_refuses_another_runs_replay_or_capture_and_an_unwritable_out(
    in_repo: Path, run_dirs: dict[str, str], tmp_path: Path
) -> None:
    db = str(tmp_path / "canary.sqlite")
    async with EmulatorServer(
        symbols=("ETHUSDT",), seed=6, tick_interval_s=0.1, microstructure=True
    ) as server:
        live = await dry_run(server, run_dirs, db=db, until=filled)
    assert live.status == "completed"

    def drift(*args: str) -> tuple[int, str, str]:
        done = CliRunner().invoke(app, ["drift", "--db", db, "--live", live.run_id, *args])
        return done.exit_code, done.stdout, done.stderr

    code, out, err = await asyncio.to_thread(drift, "--format", "json")
    assert code == 0, err
    replay = json.loads(out)["replay_run"]
    code, out, err = await asyncio.to_thread(drift, "--replay", replay, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["replay_run"] == replay

    other = tmp_path / "other"  # another run's capture
    shutil.copytree(Path(run_dirs["data_dir"]) / "captures" / live.run_id, other)
    meta = json.loads((other / "meta.json").read_text())
    (other / "meta.json").write_text(json.dumps(meta | {"run_id": "20260101T000000-x"}))
    code, out, err = await asyncio.to_thread(drift, "--capture", str(other))
    assert code == 2
    assert f"is run 20260101T000000-x's, not {live.run_id}'s" in err
    assert len(err.strip().splitlines()) == 1

    code, out, err = await asyncio.to_thread(drift, "--replay", live.run_id)
    assert code == 2
    assert f"run {live.run_id} is a dry_run run, not a replay of {live.run_id}" in err
    assert len(err.strip().splitlines()) == 1
    with RunStore(Path(db), read_only=True) as store:
        stored = store.execute("SELECT replay_run FROM drift_reports WHERE live_run=?",
                               (live.run_id,))  # fmt: skip
    assert [row[0] for row in stored] == [replay, replay]  # nothing stored for the refusal

    # --out: written, or one line and exit 2
    # (an unwritable path was an internal error, exit 1, after the drift was stored)
    table = tmp_path / "drift.txt"
    code, _, err = await asyncio.to_thread(drift, "--replay", replay, "--out", str(table))
    assert code == 0, err
    assert "signal_agreement" in table.read_text(encoding="utf-8")
    for fmt in ("table", "json", "html"):
        nowhere = tmp_path / "absent" / f"drift.{fmt}"
        code, _, err = await asyncio.to_thread(
            drift, "--replay", replay, "--format", fmt, "--out", str(nowhere)
        )
        assert code == 2, (fmt, err)
        assert f"cannot write {nowhere}: No such file or directory" in err
        assert len(err.strip().splitlines()) == 1

    # a replay that stopped part of the way through the capture is no paper side
    with sqlite3.connect(db) as con:
        con.execute("UPDATE runs SET status='interrupted' WHERE run_id=?", (replay,))
    code, _, err = await asyncio.to_thread(drift, "--replay", replay)
    assert code == 2
    assert f"replay {replay} is interrupted, not completed" in err
    assert len(err.strip().splitlines()) == 1
    with sqlite3.connect(db) as con:
        con.execute("UPDATE runs SET status='completed' WHERE run_id=?", (replay,))

    # a capture whose meta.json says it misses rows is measured with a warning
    path = Path(run_dirs["data_dir"]) / "captures" / live.run_id / "meta.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"dropped": 3}))
    code, _, err = await asyncio.to_thread(drift, "--replay", replay)
    assert code == 0, err
    assert "is incomplete: the recorder dropped 3 items" in err
