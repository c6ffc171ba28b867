"""`drift` reads the capture's books for the arrival mids one chunk at a time (SPEC 14:
the prod gate wants the drift of a canary run of 7 days or more). Measured on main: it
built every event of the capture into one list first, about 4 KB a book of 20 levels a
side, so a week's capture of one book a second per symbol took gigabytes before the
first number was computed. Here 12 000 books in chunks of 500 rows: on main the drift
peaked near 60 MB, now it stays under 20."""

import json
import sqlite3
import time
import tracemalloc
from pathlib import Path

import pytest

from perps_bot.cli.app import main
from perps_bot.domain import BookSnapshot
from perps_bot.orchestrator.replay import FillChoice, run_replay
from perps_bot.storage.capture import CaptureWriter
from tests.drift.test_replay_own_prints import CONFIG

BOOKS = 12_000


def _capture(folder: Path) -> None:
    """Books a second apart from a minute ahead (the live run's orders are those created
    after it started: metrics.drift)."""
    start = time.time_ns() // 1_000_000 + 60_000
    writer = CaptureWriter(folder, {"kind": "dry_run", "run_id": "x", "config": CONFIG,
                                    "instruments": {}}, chunk_rows=500)  # fmt: skip
    for i in range(BOOKS):
        mid = 100.0 + (i % 7) * 0.01
        bids = [(round(mid - 0.01 * (k + 1), 2), 1.0 + k + i % 3) for k in range(20)]
        asks = [(round(mid + 0.01 * (k + 1), 2), 1.0 + k + i % 5) for k in range(20)]
        writer.events([BookSnapshot(start + i * 1_000, "ETH-PERP", bids, asks, last=mid,
                                    mark=mid)])  # fmt: skip
    writer.close()


def test_drift_reads_a_long_capture_in_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    folder, db = tmp_path / "capture", tmp_path / "runs.sqlite"
    _capture(folder)
    # the run captured: a dry run of its own (here a replay made one); then its replay
    _, live = run_replay(folder, FillChoice(), db=str(db))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET kind='dry_run' WHERE run_id=?", (live.run_id,))
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps(meta | {"run_id": live.run_id}))
    _, paper = run_replay(folder, FillChoice(), db=str(db))
    capsys.readouterr()
    tracemalloc.start()
    try:
        with pytest.raises(SystemExit) as exited:
            main(["drift", "--db", str(db), "--live", live.run_id, "--replay", paper.run_id,
                  "--capture", str(folder), "--format", "json"])  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    out, err = capsys.readouterr()
    assert exited.value.code == 0, err
    drift = json.loads(out)
    assert drift["summary"]["paired_orders"] == drift["summary"]["live_orders"] > 0
    assert drift["summary"]["median_slippage_drift_bps"] == 0.0
    assert peak < 20 * 2**20, f"peak {peak / 2**20:.0f} MB"
