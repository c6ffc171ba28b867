"""A dev run (the random walk's quotes, the simulated clock) of a strategy that enters in
`on_start` ("hold from the start"). Its orders were made at once, before the feed's
first quote: the risk gate had no market data of any symbol yet and denied every one
STALE_MARKET_DATA, and nothing asked again; the strategy, having said what it wants,
held nothing for the whole run. They wait for their symbol's first price now, as a
backtest's wait for the first candle's open."""

import sqlite3
from pathlib import Path

from perps_bot.config import load_settings
from perps_bot.orchestrator.runner import run_bot_sync

HOLD = "tests.backtest.start_strategy:HoldFromStart"


def test_a_dev_run_holds_what_on_start_asked_for_on_every_symbol(tmp_path: Path) -> None:
    settings = load_settings(
        "dev",
        {
            "run": {
                "dev_fast": True,
                "duration": "10m",
                "seed": 5,
                "symbols": ["BTC-PERP", "ETH-PERP"],
                "log_dir": str(tmp_path / "logs"),
                "data_dir": str(tmp_path / "data"),
                "live_view": False,
            },
            "strategy": {"name": HOLD, "params": {}},
        },
    )
    result = run_bot_sync(settings, progress=False)
    assert result.status == "completed"
    with sqlite3.connect(result.db_path) as conn:
        denials = conn.execute(
            "SELECT symbol, reason_code, detail FROM denials WHERE run_id=?", (result.run_id,)
        ).fetchall()
        fills = conn.execute(
            "SELECT symbol, side FROM fills WHERE run_id=? ORDER BY seq", (result.run_id,)
        ).fetchall()
    assert denials == [], "on_start's orders were denied before any market data"
    assert sorted(fills) == [("BTC-PERP", "buy"), ("ETH-PERP", "buy")]
