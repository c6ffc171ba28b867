"""Alerts a trader relies on that no journal line of the run makes: a run the next
start finds crashed (its process died: it could not say so itself)."""

import sqlite3
from pathlib import Path
from typing import Any

from perps_bot.config import load_settings
from perps_bot.orchestrator.runner import run_bot_sync
from tests.harness.alert_receiver import alert_receiver


def _settings(tmp: Path, alerts: dict[str, Any] | None = None) -> Any:
    run = {"dev_fast": True, "duration": "2h", "seed": 5, "log_dir": str(tmp / "logs"),
           "data_dir": str(tmp / "data"), "live_view": False}  # fmt: skip
    return load_settings("dev", {"run": run, **({"alerts": alerts} if alerts else {})})


def test_a_run_found_crashed_at_the_next_start_is_alerted_once(tmp_path: Path) -> None:
    """A bot killed (OOM, kill -9, power cut) left its run `running`; the next start
    marked it crashed with a WARNING only, which no alert carries: the trader learnt of
    the crash from nothing. The start that finds it sends its run_end: crashed."""
    first = run_bot_sync(_settings(tmp_path), progress=False)
    db = next((tmp_path / "data").glob("*.sqlite"))
    with sqlite3.connect(db) as con:  # as a killed process leaves it (its pid is gone)
        con.execute("UPDATE runs SET status='running', pid=NULL, host=NULL")
    con.close()
    with alert_receiver() as (port, received):
        alerts = {"urls": [f"json://127.0.0.1:{port}"], "on": ["run_end"]}
        second = run_bot_sync(_settings(tmp_path, alerts), progress=False)
        run_bot_sync(_settings(tmp_path, alerts), progress=False)  # nothing crashed since
    crashed = [r["message"] for r in received if f"run {first.run_id} " in r["message"]]
    assert len(crashed) == 1, received
    assert crashed[0].startswith(f"run {first.run_id} ended: crashed"), crashed
    assert second.run_id in crashed[0]
    assert [r["title"] for r in received].count("perps-bot dev: run ended") == 3
