"""Capture and replay (SPEC 14) against the loopback emulator with other participants:
a dry run records every book and public trade the bot saw; its replay through the
paper venue is deterministic and stored as a run of kind `replay`."""

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import load_settings
from perps_bot.domain import BookSnapshot
from perps_bot.feeds.replay import ReplayFeed, order_rows
from perps_bot.orchestrator.replay import FillChoice, run_replay
from perps_bot.orchestrator.runner import run_bot
from perps_emulator import EmulatorServer
from tests.drift import drift_strategy

pytestmark = pytest.mark.integration


async def dry_run(server: EmulatorServer, run_dirs: dict[str, str], strategy: str) -> Any:
    settings = load_settings(
        "canary",
        {
            "run": {"duration": "3s", "dry_run": True, "live_view": False, **run_dirs},
            "exchange": {"base_url": server.base_url, "poll_interval": "100ms"},
            "strategy": {"name": strategy, "params": {"every": 2}},
        },
    )
    return await run_bot(settings, progress=False)


def fills(db: Path, run_id: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT ts, symbol, side, size, price, fee FROM fills WHERE run_id=? ORDER BY rowid",
            (run_id,),
        ).fetchall()


async def test_a_dry_run_capture_holds_every_book_and_trade_the_bot_saw(
    in_repo: Path, run_dirs: dict[str, str]
) -> None:
    drift_strategy.SEEN.clear()
    async with EmulatorServer(
        symbols=("ETHUSDT",), seed=4, tick_interval_s=0.1, microstructure=True
    ) as server:
        result = await dry_run(server, run_dirs, "tests.drift.drift_strategy:SeeAll")
    assert result.status == "completed"
    folder = Path(run_dirs["data_dir"]) / "captures" / result.run_id
    feed = ReplayFeed(folder)
    seen = list(drift_strategy.SEEN)
    books = [e for e in seen if isinstance(e, BookSnapshot)]
    assert len(books) > 10 and sum(len(b.trades) for b in books) > 10  # it saw a market
    assert feed.events() == seen  # every event, books with their trades, in order
    assert feed.meta["counts"]["trades"] == sum(len(b.trades) for b in books)
    assert feed.meta["dropped"] == 0 and feed.meta["complete"]
    steps = [r["step"] for r in order_rows(folder)]
    assert {"sent", "acknowledged", "accepted", "fill"} <= set(steps)


async def test_a_replay_is_deterministic_and_stored_as_a_replay_run(
    in_repo: Path, run_dirs: dict[str, str], tmp_path: Path
) -> None:
    async with EmulatorServer(
        symbols=("ETHUSDT",), seed=6, tick_interval_s=0.1, microstructure=True
    ) as server:
        result = await dry_run(server, run_dirs, "tests.drift.drift_strategy:DriftProbe")
    folder = Path(run_dirs["data_dir"]) / "captures" / result.run_id
    db = str(tmp_path / "replays.sqlite")
    runs = {}
    for model in ("touch", "touch"):
        settings, replayed = await asyncio_to_thread(
            run_replay, folder, FillChoice(fill_model=model), db=db
        )
        assert replayed.status == "completed" and settings.run.replay_of == result.run_id
        runs.setdefault(model, []).append(fills(Path(db), replayed.run_id))
    touch_a, touch_b = runs["touch"]
    assert touch_a and touch_a == touch_b
    with sqlite3.connect(db) as conn:
        kinds = {r[0] for r in conn.execute("SELECT kind FROM runs")}
    assert kinds == {"replay"}


async def asyncio_to_thread(func: Any, *args: Any, **kwargs: Any) -> Any:
    """run_replay owns its event loop (asyncio.run): give it a thread of its own."""
    import asyncio

    return await asyncio.to_thread(func, *args, **kwargs)
