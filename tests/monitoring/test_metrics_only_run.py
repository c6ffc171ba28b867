"""`run.record: metrics` (a profile key: keep only what the metrics need, no journal
file) on a bot run: it crashed at start (the journal that keeps nothing could not be
followed by the run's metrics and alerts). It runs, writes no events file, and its
alerts still go out."""

from pathlib import Path

from perps_bot.config import load_settings
from perps_bot.orchestrator.runner import run_bot_sync
from tests.harness.alert_receiver import alert_receiver


def test_a_metrics_only_dev_run_runs_and_alerts_without_a_journal(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    run = {"dev_fast": True, "duration": "6h", "seed": 5, "log_dir": str(logs),
           "data_dir": str(tmp_path / "data"), "record": "metrics"}  # fmt: skip
    with alert_receiver() as (port, received):
        alerts = {"urls": [f"json://127.0.0.1:{port}"], "on": ["trade_closed", "run_end"],
                  "max_per_minute": 100_000}  # fmt: skip
        result = run_bot_sync(load_settings("dev", {"run": run, "alerts": alerts}), progress=False)
    assert result.status == "completed"
    assert result.report is not None and result.report.trades
    assert not (logs / "events.jsonl").exists()
    titles = [r["title"] for r in received]
    assert titles.count("perps-bot dev: trade closed") == len(result.report.trades), titles
    assert titles[-1] == "perps-bot dev: run ended"
