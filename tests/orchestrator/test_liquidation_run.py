"""A grossly over-leveraged dev run gets liquidated: the orchestrator stores the forced
close, journals it, logs a PnL line, counts it in the report and tells the strategy."""

import json
import sqlite3
from pathlib import Path
from typing import Any

from perps_bot.config import load_settings
from perps_bot.orchestrator.runner import run_bot_sync
from tests.harness.limits import LOOSE_RISK


def test_over_leveraged_run_is_liquidated_and_recorded(tmp_path: Path) -> None:
    overrides: dict[str, Any] = {
        "run": {
            "dev_fast": True,
            "duration": "3d",
            "seed": 1,
            "symbols": ["BTC-PERP"],
            "log_dir": str(tmp_path / "logs"),
            "data_dir": str(tmp_path / "data"),
        },
        "mock": {
            "symbols": {
                "BTC-PERP": {
                    "initial_price": 60_000.0,
                    "volatility": 4.0,
                    "book_depth": 500.0,
                }
            }
        },
        "account": {"initial_balance": 100_000.0, "default_leverage": 100.0},
        "strategy": {"order_size": {"BTC-PERP": 60.0}},
        "risk": LOOSE_RISK,
    }
    settings = load_settings("dev", overrides)
    result = run_bot_sync(settings, progress=False)

    with sqlite3.connect(result.db_path) as conn:
        liquidations = conn.execute(
            "SELECT ts, price, fee, position_after, reason FROM fills"
            " WHERE run_id=? AND is_liquidation=1",
            (result.run_id,),
        ).fetchall()
    assert liquidations, "a 36x position on a 400%-vol walk must be liquidated within 3 days"
    for _ts, price, fee, position_after, reason in liquidations:
        assert position_after == 0.0
        assert reason == "liquidation"
        assert fee > 0 and price > 0

    events = [json.loads(line) for line in (tmp_path / "logs" / "events.jsonl").open()]
    assert sum(e["type"] == "liquidation" for e in events) == len(liquidations)
    log_text = (tmp_path / "logs" / "perps_bot.log").read_text()
    liquidation_lines = [line for line in log_text.splitlines() if " LIQUIDATION " in line]
    assert len(liquidation_lines) == len(liquidations)
    assert all("PnL" in line for line in liquidation_lines)

    from perps_bot.metrics.report import build_report
    from perps_bot.storage import RunStore

    with RunStore(result.db_path, read_only=True) as store:
        report = build_report(store, result.run_id)
    assert report.metrics["liquidations"] == len(liquidations)
    assert not report.passed  # "no liquidations" is a promotion criterion
