"""Capture and replay (SPEC 14) against the loopback emulator with other participants:
a dry run records every book and public trade the bot saw; its replay through the
paper venue is deterministic and stored as a run of kind `replay`."""

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from perps_bot.domain import BookSnapshot, Candle
from perps_bot.feeds.replay import ReplayFeed, order_rows
from perps_bot.orchestrator.replay import FillChoice, run_replay
from perps_bot.orchestrator.runner import Run
from perps_emulator import EmulatorServer
from tests.drift import drift_strategy
from tests.drift.dry import PROBE, dry_run, filled

pytestmark = pytest.mark.integration


def fills(db: Path, run_id: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT ts, symbol, side, size, price, fee FROM fills WHERE run_id=? ORDER BY rowid",
            (run_id,),
        ).fetchall()


async def test_a_dry_run_capture_holds_every_book_and_trade_the_bot_saw(
    in_repo: Path, run_dirs: dict[str, str], tmp_path: Path
) -> None:
    """The strategy is shown the feed's events and the bars the orchestrator builds from
    their prices (never captured: a replay builds the same ones). On 1s bars some close
    in every run, so both parts are checked every time (on the canary's 1m bars only a
    run crossing a minute boundary sees one: this test then failed about 1 run in 20).
    The run lasts until it has seen a market, a bar and fills, not a fixed 3 s of wall
    time (which a loaded machine filled with fewer than the 10 books asked for)."""
    drift_strategy.SEEN.clear()

    def saw_enough(run: Run) -> bool:
        books = [e for e in drift_strategy.SEEN if isinstance(e, BookSnapshot)]
        return (
            len(books) > 10
            and sum(len(b.trades) for b in books) > 10
            and any(isinstance(e, Candle) for e in drift_strategy.SEEN)
            and filled(run, 2)
        )

    async with EmulatorServer(
        symbols=("ETHUSDT",), seed=4, tick_interval_s=0.1, microstructure=True
    ) as server:
        strategy = "tests.drift.drift_strategy:SeeAll"
        result = await dry_run(server, run_dirs, strategy, "1s", until=saw_enough)
    assert result.status == "completed"
    folder = Path(run_dirs["data_dir"]) / "captures" / result.run_id
    feed = ReplayFeed(folder)
    seen = list(drift_strategy.SEEN)
    books = [e for e in seen if isinstance(e, BookSnapshot)]
    assert len(books) > 10 and sum(len(b.trades) for b in books) > 10  # it saw a market
    bars = [e for e in seen if isinstance(e, Candle)]
    assert bars, "no bar closed: the bars the strategy sees are not checked"
    # every event of the feed, books with their trades, in order
    assert feed.events() == [e for e in seen if not isinstance(e, Candle)]
    assert feed.meta["counts"]["trades"] == sum(len(b.trades) for b in books)
    assert feed.meta["dropped"] == 0 and feed.meta["complete"]
    steps = [r["step"] for r in order_rows(folder)]
    assert {"sent", "acknowledged", "accepted", "fill"} <= set(steps)

    drift_strategy.SEEN.clear()  # its replay shows the strategy the same, bars included
    db = str(tmp_path / "replays.sqlite")
    _, replayed = await asyncio_to_thread(run_replay, folder, FillChoice(), db=db)
    assert replayed.status == "completed"
    assert seen == drift_strategy.SEEN  # replayed


async def test_a_replay_is_deterministic_and_stored_as_a_replay_run(
    in_repo: Path, run_dirs: dict[str, str], tmp_path: Path
) -> None:
    async with EmulatorServer(
        symbols=("ETHUSDT",), seed=6, tick_interval_s=0.1, microstructure=True
    ) as server:
        result = await dry_run(server, run_dirs, until=lambda run: filled(run, 2))
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


async def test_a_replay_fills_with_the_captured_profile_s_latency_model(
    in_repo: Path, run_dirs: dict[str, str], tmp_path: Path
) -> None:
    """A dry run fills on the real book with its profile's paper model (`mock:`), say
    the empirical latency `drift --calibrate` proposes; replayed without a model of its
    own, the capture must fill as the dry run did. On main the replay always drew a
    constant latency: its fills differed from the dry run's (other times and prices,
    more round trips), and `drift` measured that difference against the live run."""
    mock = {"latency_model": "empirical", "latency_samples": [300, 700]}
    async with EmulatorServer(
        symbols=("ETHUSDT",), seed=6, tick_interval_s=0.1, microstructure=True
    ) as server:
        result = await dry_run(server, run_dirs, until=lambda run: filled(run, 4), mock=mock)
    assert result.status == "completed"
    folder = Path(run_dirs["data_dir"]) / "captures" / result.run_id
    db = str(tmp_path / "replays.sqlite")
    settings, replayed = await asyncio_to_thread(run_replay, folder, FillChoice(), db=db)
    assert replayed.status == "completed"
    assert settings.mock.latency_model == "empirical"
    assert settings.mock.latency_samples == [300, 700]
    live = fills(Path(run_dirs["data_dir"]) / "perps_bot.canary.sqlite", result.run_id)
    assert len(live) >= 4 and fills(Path(db), replayed.run_id) == live


async def asyncio_to_thread(func: Any, *args: Any, **kwargs: Any) -> Any:
    """run_replay owns its event loop (asyncio.run): give it a thread of its own."""
    import asyncio

    return await asyncio.to_thread(func, *args, **kwargs)


async def test_a_run_with_several_portfolios_is_captured_replayed_and_drifted_per_portfolio(
    in_repo: Path, run_dirs: dict[str, str], tmp_path: Path
) -> None:
    """SPEC 10 with SPEC 14: the capture is the account run's; its replay runs every
    portfolio again (child runs REPLAY.ID); drift is measured and stored per portfolio
    (what `promote --to prod --portfolio ID` checks)."""
    import json

    from typer.testing import CliRunner

    from perps_bot.cli.app import app
    from perps_bot.storage import RunStore
    from perps_bot.storage.drift_store import latest_drift

    db = str(tmp_path / "canary.sqlite")
    async with EmulatorServer(
        symbols=("ETHUSDT",), seed=6, tick_interval_s=0.1, microstructure=True
    ) as server:
        result = await dry_run(server, run_dirs, db=db, until=filled, portfolios=[
            {"id": "a", "strategy": PROBE, "params": {"every": 2}},
            {"id": "b", "strategy": PROBE, "params": {"every": 3}},
        ])  # every portfolio traded  # fmt: skip
    assert result.status == "completed"
    folder = Path(run_dirs["data_dir"]) / "captures" / result.run_id
    assert ReplayFeed(folder).meta["portfolios"] == ["a", "b"]

    def invoke(*args: str) -> tuple[int, str, str]:
        done = CliRunner().invoke(app, ["drift", "--db", db, *args])
        return done.exit_code, done.stdout, done.stderr

    code, out, err = await asyncio_to_thread(invoke, "--live", result.run_id, "--format", "json")
    assert code == 0, err
    drifts = json.loads(out)["portfolios"]
    assert [d["live_run"] for d in drifts] == [f"{result.run_id}.a", f"{result.run_id}.b"]
    replay = drifts[0]["replay_run"].rsplit(".", 1)[0]
    assert [d["replay_run"] for d in drifts] == [f"{replay}.a", f"{replay}.b"]
    assert all(d["summary"]["live_orders"] > 0 for d in drifts)
    for drift in drifts:  # SPEC 14: fees per trade too (each paired order's fills' fees)
        for side in ("live", "paper"):
            orders = [p[side] for p in drift["pairs"] if p[side] is not None]
            assert any(o["fee"] > 0 for o in orders), (side, orders)
            total = drift["summary"][f"{side}_fees"]
            assert sum(o["fee"] for o in orders) == pytest.approx(total)
    with RunStore(Path(db), read_only=True) as store:
        assert {c.kind for c in store.children(replay)} == {"replay"}
        assert latest_drift(store, f"{result.run_id}.b") is not None
        assert latest_drift(store, f"{result.run_id}.a") is not None
        ended = store.run(f"{result.run_id}.a").end_ts  # measured after: evidence for prod
        assert latest_drift(store, f"{result.run_id}.a", measured_from=ended) is not None
        assert latest_drift(store, result.run_id) is None  # the account is not a strategy

    code, out, err = await asyncio_to_thread(
        invoke, "--live", f"{result.run_id}.b", "--replay", replay, "--format", "json"
    )
    assert code == 0, err
    assert json.loads(out)["live_run"] == f"{result.run_id}.b"
    code, _, err = await asyncio_to_thread(invoke, "--live", result.run_id, "--format", "html")
    assert code == 2 and "give --portfolio ID" in err and len(err.strip().splitlines()) == 1
    code, _, err = await asyncio_to_thread(invoke, "--live", result.run_id, "--portfolio", "z")
    assert code == 2 and "has no portfolio 'z'" in err
