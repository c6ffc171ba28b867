"""The ledger is the one position book and every order row ends in a final state
(SPEC 8). Each test reproduces a finding of issue 10 that failed on the old main."""

import csv
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import load_settings
from perps_bot.metrics.export import write_orders_csv
from perps_bot.orchestrator.runner import run_bot_sync
from perps_bot.storage import RunStore
from tests.harness.limits import LOOSE_RISK
from tests.harness.scripted import ScriptedFeed, quotes

START_MS = 1_704_067_200_000  # the dev profile's mock.start, 2024-01-01


def _settings(tmp_path: Path, **sections: Any) -> Any:
    overrides: dict[str, Any] = {
        "run": {
            "dev_fast": True,
            "symbols": ["BTC-PERP"],
            "log_dir": str(tmp_path / "logs"),
            "data_dir": str(tmp_path / "data"),
            "live_view": False,
        }
    }
    for key, value in sections.items():
        overrides[key] = overrides.get(key, {}) | value
    return load_settings("dev", overrides)


def test_trading_continues_correctly_after_a_liquidation(tmp_path: Path) -> None:
    """Isolated 100x long, a crash liquidates it; the strategy then goes short 1 and
    later flat. The run must end flat: the venue may not keep a position book of its own
    (it used to clip the closing order as reduce-only against its stale +1 and cancel it
    silently, leaving the ledger at -1)."""
    prices = [60_000.0] * 10 + [59_000.0] * 50
    settings = _settings(
        tmp_path,
        account={"margin_mode": "isolated", "default_leverage": 100.0},
        strategy={
            "name": "tests.harness.scripted:ScriptedTargets",
            "params": {"symbol": "BTC-PERP", "script": "2:1,30:-1,40:0"},
        },
        risk=LOOSE_RISK,
    )
    feed = ScriptedFeed(quotes("BTC-PERP", prices, start_ms=START_MS))
    result = run_bot_sync(settings, feed=feed, progress=False)
    assert result.status == "completed"
    with sqlite3.connect(result.db_path) as conn:
        fills = conn.execute(
            "SELECT side, size, is_liquidation, position_after FROM fills"
            " WHERE run_id=? ORDER BY seq",
            (result.run_id,),
        ).fetchall()
        statuses = conn.execute(
            "SELECT status, COUNT(*) FROM orders WHERE run_id=? GROUP BY status",
            (result.run_id,),
        ).fetchall()
    assert [f[2] for f in fills] == [0, 1, 0, 0], fills  # entry, liquidation, short, close
    assert fills[-1][3] == 0.0, f"the run ended with a position: {fills}"
    assert dict(statuses) == {"filled": 3}


def test_every_stored_order_ends_final_with_its_fills(tmp_path: Path) -> None:
    """A two-day dev run used to store every order as status='new', filled=0."""
    settings = _settings(tmp_path, run={"duration": "2d", "symbols": ["BTC-PERP", "ETH-PERP"]})
    result = run_bot_sync(settings, progress=False)
    assert result.status == "completed"
    with sqlite3.connect(result.db_path) as conn:
        orders = conn.execute(
            "SELECT client_id, status, filled, size FROM orders WHERE run_id=?",
            (result.run_id,),
        ).fetchall()
        filled_by_order = dict(
            conn.execute(
                "SELECT client_id, SUM(size) FROM fills WHERE run_id=? AND is_liquidation=0"
                " GROUP BY client_id",
                (result.run_id,),
            ).fetchall()
        )
    assert len(orders) > 50
    final = {"filled", "canceled", "rejected", "expired"}
    for client_id, status, filled, size in orders:
        assert status in final, (client_id, status)
        assert filled == pytest.approx(filled_by_order.get(client_id, 0.0), abs=1e-12)
        if status == "filled":
            assert filled == pytest.approx(size, abs=1e-12)
    assert set(filled_by_order) <= {o[0] for o in orders}
    with RunStore(result.db_path, read_only=True) as store:
        write_orders_csv(store, result.run_id, tmp_path / "orders.csv")
    exported = list(csv.DictReader((tmp_path / "orders.csv").open()))
    assert len(exported) == len(orders)
    assert {row["status"] for row in exported} <= final
    assert all(row["portfolio"] == "main" and row["reason"] for row in exported)


def test_a_target_position_is_reached_to_the_step(tmp_path: Path) -> None:
    """From 0.002 BTC held, a target of 0.009 asks for 0.009 - 0.002, the float
    0.006999999999999999: floored to 0.006 it fell a step short, and the last step,
    0.0009999999999999992, then counted as below one step, so the run ended at 0.008."""
    settings = _settings(
        tmp_path,
        strategy={
            "name": "tests.harness.scripted:ScriptedTargets",
            "params": {"symbol": "BTC-PERP", "script": "2:0.002,10:0.009,20:0.009"},
        },
        risk=LOOSE_RISK,
    )
    feed = ScriptedFeed(quotes("BTC-PERP", [60_000.0] * 30, start_ms=START_MS))
    result = run_bot_sync(settings, feed=feed, progress=False)
    assert result.status == "completed"
    with sqlite3.connect(result.db_path) as conn:
        fills = conn.execute(
            "SELECT side, size, position_after FROM fills WHERE run_id=? ORDER BY seq",
            (result.run_id,),
        ).fetchall()
    assert fills == [("buy", 0.002, 0.002), ("buy", 0.007, 0.009)]
