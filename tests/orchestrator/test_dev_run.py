"""The dev profile end to end through the real orchestrator: reproducible fills, PnL log
lines, journal correlation ids, stored state, and a clean stop on Ctrl-C."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import load_settings
from perps_bot.monitoring import JournalEvent
from perps_bot.orchestrator.runner import RunResult, run_bot_sync
from perps_bot.storage import RunStore
from tests.conftest import REPO


def _run(tmp: Path, **run: Any) -> RunResult:
    overrides: dict[str, Any] = {
        "run": {
            "dev_fast": True,
            "duration": "6h",
            "log_dir": str(tmp / "logs"),
            "data_dir": str(tmp / "data"),
            **run,
        }
    }
    settings = load_settings("dev", overrides)
    return run_bot_sync(settings, progress=False)


def _fills(db: Path, run_id: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT seq, ts, symbol, side, size, price, fee, liquidity, client_id, reason,"
            " realized_pnl, position_after FROM fills WHERE run_id=? ORDER BY seq",
            (run_id,),
        ).fetchall()


def test_same_seed_same_fills_different_seed_different(tmp_path: Path) -> None:
    first = _run(tmp_path / "a", seed=11)
    second = _run(tmp_path / "b", seed=11)
    other = _run(tmp_path / "c", seed=12)
    fills_a = _fills(first.db_path, first.run_id)
    assert len(fills_a) > 5, "the dev strategy should trade within 6 simulated hours"
    assert fills_a == _fills(second.db_path, second.run_id)
    assert fills_a != _fills(other.db_path, other.run_id)
    assert first.final_equity == second.final_equity


def test_run_writes_pnl_lines_journal_and_state(tmp_path: Path) -> None:
    result = _run(tmp_path, seed=3)
    assert result.status == "completed"
    log_text = (tmp_path / "logs" / "perps_bot.log").read_text()
    pnl_lines = [line for line in log_text.splitlines() if "PnL" in line]
    fill_lines = [line for line in pnl_lines if " FILL " in line]
    assert len(fill_lines) == result.fills
    assert any(" EQUITY " in line for line in pnl_lines)
    for line in fill_lines:
        assert "realized=" in line and "unrealized=" in line and "total=" in line
        assert "equity=" in line

    events = [json.loads(line) for line in (tmp_path / "logs" / "events.jsonl").open()]
    for event in events:
        JournalEvent.model_validate(event)  # every line fits the published schema
    assert {e["run_id"] for e in events} == {result.run_id}
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_type.setdefault(event["type"], []).append(event)
    assert {"run_start", "signal", "order", "fill", "run_end"} <= set(by_type)
    signal_ids = {e["correlation_id"] for e in by_type["signal"]}
    for fill in by_type["fill"]:
        assert fill["correlation_id"] in signal_ids  # signal -> order -> fill chain

    with sqlite3.connect(result.db_path) as conn:
        run = conn.execute(
            "SELECT status, profile, kind, seed, strategy_fingerprint, code_version, start_ts,"
            " end_ts FROM runs WHERE run_id=?",
            (result.run_id,),
        ).fetchone()
        orders = conn.execute(
            "SELECT COUNT(*) FROM orders WHERE run_id=?", (result.run_id,)
        ).fetchone()[0]
    with RunStore(result.db_path, read_only=True) as store:
        equity_rows = store.equity_span(result.run_id)[2]
    assert run[:4] == ("completed", "dev", "dev", 3)
    assert run[4] and run[5]
    assert run[7] - run[6] >= 6 * 3600 * 1000 - 2000
    assert equity_rows >= 6 * 60  # at least one per simulated minute
    assert orders >= result.fills // 2


def test_ledger_equity_matches_stored_cash_flows(tmp_path: Path) -> None:
    """Equity at the end = initial + realized - fees + funding + unrealized, from the store."""
    result = _run(tmp_path, seed=5)
    with sqlite3.connect(result.db_path) as conn:
        realized, fees = conn.execute(
            "SELECT COALESCE(SUM(realized_pnl),0), COALESCE(SUM(fee),0) FROM fills WHERE run_id=?",
            (result.run_id,),
        ).fetchone()
        funding = conn.execute(
            "SELECT COALESCE(SUM(payment),0) FROM funding WHERE run_id=?", (result.run_id,)
        ).fetchone()[0]
    with RunStore(result.db_path, read_only=True) as store:
        curve = list(store.iter_equity(result.run_id))[-1]
    last = (curve.equity[-1], curve.cash[-1], curve.unrealized_pnl[-1])
    assert last[0] == pytest.approx(result.final_equity, abs=1e-6)
    assert last[1] == pytest.approx(100_000 + realized - fees + funding, abs=1e-6)
    assert last[0] == pytest.approx(last[1] + last[2], abs=1e-6)


def test_ctrl_c_stops_cleanly_with_state_flushed(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PERPS_BOT__RUN__LOG_DIR"] = str(tmp_path / "logs")
    env["PERPS_BOT__RUN__DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen(
        [sys.executable, "-m", "perps_bot", "--profile", "dev", "--dev-fast", "--duration", "30d"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    db = tmp_path / "data" / "perps_bot.dev.sqlite"
    deadline = time.monotonic() + 60
    fills = 0
    while time.monotonic() < deadline and fills == 0:  # wait until the run has traded
        time.sleep(0.2)
        if db.exists():
            try:
                with sqlite3.connect(db) as conn:
                    fills = conn.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
            except sqlite3.OperationalError:
                fills = 0
    assert fills > 0, "the run never traded"
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    with sqlite3.connect(db) as conn:
        status, end_ts = conn.execute("SELECT status, end_ts FROM runs").fetchone()
        stored_fills = conn.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
    assert status == "interrupted" and end_ts is not None
    assert stored_fills >= fills
    log_text = (tmp_path / "logs" / "perps_bot.log").read_text()
    assert "end (interrupted)" in log_text


def test_collector_settings_are_restored_after_a_run(tmp_path: Path) -> None:
    """A run tunes the garbage collector for its loop; the process gets its own
    settings back afterwards (tests and embedding programs run many bots)."""
    import gc

    gc.set_threshold(1_234, 11, 12)
    frozen_before = gc.get_freeze_count()
    try:
        _run(tmp_path, duration="10m")
        assert gc.get_threshold() == (1_234, 11, 12)
        assert gc.get_freeze_count() == frozen_before
    finally:
        gc.set_threshold(700, 10, 10)
