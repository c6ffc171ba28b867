"""SPEC 5 and 9: a paper run stopped between two checkpoints is resumed from the last
one and replays what followed it. Its events.jsonl holds each event of the run once: the
lines the stopped run wrote after its checkpoint are not written a second time by their
replay, so counting the fills, orders or trades in the file gives the run's numbers."""

import contextlib
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson

from perps_bot.config import Settings, load_settings
from perps_bot.monitoring.journal import Journal
from perps_bot.orchestrator.run_process import INTERRUPTED
from perps_bot.orchestrator.runner import Run, run_bot_sync
from perps_bot.storage import RunStore
from tests.durable.helpers import checkpointer_of

COUNTED = ("signal", "order", "fill", "trade_closed", "funding", "equity", "denial")


def _settings(tmp: Path) -> Settings:
    run = {"dev_fast": True, "duration": "12h", "seed": 5, "log_dir": str(tmp / "logs"),
           "data_dir": str(tmp / "data")}  # fmt: skip
    return load_settings("dev", {"run": run})


def _stopped_after(fills: int) -> Callable[[Run], Any]:
    """One checkpoint after the first fill, stopped (journal flushed) at the end of the
    batch in which `fills` fills happened."""

    @contextlib.asynccontextmanager
    async def attach(run: Run) -> AsyncIterator[None]:
        orchestrator, checkpointer = run.orchestrator, checkpointer_of(run)
        checkpointer.every_s = 1e9  # no checkpoint for the time that passes
        seen: list[int] = []
        run.journal.subscribe(lambda t, line: seen.append(line["ts"]) if t == "fill" else None)

        def after_batch() -> None:
            if seen and checkpointer.saved == 0:
                checkpointer.save()
            if len(seen) >= fills:
                orchestrator.request_stop(INTERRUPTED, interrupt=True)

        orchestrator.after_batch = after_batch
        yield

    return attach


def _counts(tmp: Path, run_id: str) -> Counter[str]:
    lines = (tmp / "logs" / "events.jsonl").read_bytes().splitlines()
    return Counter(
        line["type"] for line in map(orjson.loads, lines)
        if line["run_id"] == run_id and line["type"] in COUNTED
    )  # fmt: skip


def test_a_resumed_run_journals_each_event_once(tmp_path: Path) -> None:
    whole = run_bot_sync(_settings(tmp_path / "whole"), progress=False)
    assert whole.status == "completed" and whole.fills > 6
    settings = _settings(tmp_path / "stopped")
    first = run_bot_sync(settings, progress=False, attach=_stopped_after(whole.fills // 2))
    assert first.status == "interrupted"
    resumed = run_bot_sync(settings, progress=False, resume="latest")
    assert resumed.run_id == first.run_id and resumed.status == "completed"
    assert resumed.fills == whole.fills
    expected = _counts(tmp_path / "whole", whole.run_id)
    assert expected["fill"] == whole.fills
    counted = _counts(tmp_path / "stopped", resumed.run_id)
    # the stopped run's own last equity snapshot, at its stop, is one line more
    assert counted["equity"] - expected["equity"] in (0, 1)
    assert counted - Counter(equity=counted["equity"]) == expected - Counter(
        equity=expected["equity"]
    )
    for table in ("fills", "orders", "funding", "denials"):
        assert _rows(tmp_path / "stopped", table) == _rows(tmp_path / "whole", table), table


def _rows(tmp: Path, table: str) -> int:
    (db,) = (tmp / "data").glob("*.sqlite")
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_the_run_log_of_a_resumed_run_marks_the_lines_it_logs_again(tmp_path: Path) -> None:
    """perps_bot.log: the FILL and TRADE CLOSED lines of the events replayed after the
    checkpoint were logged a second time, indistinguishable from new ones; they say
    `(replayed)`, so the lines without it count each fill and trade once."""
    whole = run_bot_sync(_settings(tmp_path / "whole"), progress=False)
    settings = _settings(tmp_path / "stopped")
    run_bot_sync(settings, progress=False, attach=_stopped_after(whole.fills // 2))
    run_bot_sync(settings, progress=False, resume="latest")
    lines = (tmp_path / "stopped" / "logs" / "perps_bot.log").read_text().splitlines()
    new = [line for line in lines if " (replayed) " not in line]
    assert sum(" FILL " in line for line in new) == whole.fills
    expected = (tmp_path / "whole" / "logs" / "perps_bot.log").read_text().count("TRADE CLOSED")
    assert sum("TRADE CLOSED" in line for line in new) == expected
    assert any(" (replayed) " in line and " FILL " in line for line in lines)


def test_a_line_torn_by_the_kill_does_not_swallow_the_resumed_runs_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    whole = b'{"type":"fill","run_id":"r","ts":5,"correlation_id":null}'
    path.write_bytes(whole + b"\n" + whole[:40])
    journal = Journal(path, "r")
    journal.skip_written(0, ["r"])
    journal.write("fill", 5, {})  # replayed: already there
    journal.write("fill", 6, {})
    journal.close()
    lines = path.read_bytes().splitlines()
    assert lines == [whole, whole[:40], whole.replace(b"5", b"6")]


def test_a_resumed_run_keeps_the_price_chart_sampled_before_its_checkpoint(
    tmp_path: Path,
) -> None:
    """The report's price and indicator chart (plot_series) of a resumed run began at
    its checkpoint: the samples taken before it were lost."""
    whole = run_bot_sync(_settings(tmp_path / "whole"), progress=False)
    settings = _settings(tmp_path / "stopped")
    run_bot_sync(settings, progress=False, attach=_stopped_after(whole.fills // 2))
    resumed = run_bot_sync(settings, progress=False, resume="latest")
    expected = _store(tmp_path / "whole").plot_series(whole.run_id)
    got = _store(tmp_path / "stopped").plot_series(resumed.run_id)
    assert sorted(got) == sorted(expected) != []
    for symbol, series in expected.items():
        assert got[symbol].ts.tolist() == series.ts.tolist(), symbol
        assert got[symbol].price.tolist() == series.price.tolist(), symbol


def _store(tmp: Path) -> RunStore:
    (db,) = (tmp / "data").glob("*.sqlite")
    return RunStore(db)
