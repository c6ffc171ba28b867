"""A change of the trading state says what caused it: the state_change line (what the
halt alert sends) and the run log's RISK STATE line name the limit that was passed."""

import json
from pathlib import Path

from perps_bot.config import load_settings
from perps_bot.orchestrator.runner import run_bot_sync

#: a drawdown of 0.1 USDT on 100 000 halts a dev run within its first simulated hour
HALTING = {"max_drawdown": 0.000001, "reducing_drawdown": 0.000001}


def test_a_drawdown_halt_names_the_drawdown_and_the_equity(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    run = {"dev_fast": True, "duration": "3h", "seed": 5, "log_dir": str(logs),
           "data_dir": str(tmp_path / "data")}  # fmt: skip
    run_bot_sync(load_settings("dev", {"run": run, "risk": HALTING}), progress=False)
    events = [json.loads(line) for line in (logs / "events.jsonl").open()]
    changes = [e for e in events if e["type"] == "state_change"]
    assert [e["state"] for e in changes] == ["HALTED"]
    detail = changes[0]["detail"]
    assert "drawdown" in detail and "max_drawdown" in detail and "equity " in detail, detail
    log = (logs / "perps_bot.log").read_text(encoding="utf-8")
    assert f"RISK STATE -> HALTED ({detail})" in log
