"""SPEC 3 and 9: a dry run resumed from its checkpoint held its position all through
the time it was down, as an exchange account would have: the funding the exchange
settled meanwhile is charged to it at the restart (read from the exchange's funding
history), booked and journaled like any settlement. It was never charged: the feed
takes a period that ended before it started as booked already."""

import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from perps_bot.config import Settings
from perps_bot.orchestrator.run_process import INTERRUPTED
from perps_bot.orchestrator.runner import Run, run_bot
from perps_emulator import EmulatorServer, Fault
from tests.durable.helpers import (
    checkpointer_of,
    flip_once_dry_run,
    query,
    stopped_after_a_batch,
)

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def _interrupted_once_long(run: Run) -> AsyncIterator[None]:
    """A checkpoint, then Ctrl-C, at the end of the first batch that holds ETH."""
    orchestrator, checkpointer = run.orchestrator, checkpointer_of(run)

    def after_batch() -> None:
        if orchestrator.ledger.position_size("ETH-PERP") > 0 and not orchestrator.stop_requested:
            checkpointer.save()
            orchestrator.request_stop(INTERRUPTED, interrupt=True)

    orchestrator.after_batch = after_batch
    yield


async def test_a_resumed_dry_run_pays_the_funding_settled_while_it_was_down(
    in_repo: Path, run_dirs: dict[str, str]
) -> None:
    shift = [0]  # the exchange's clock: the wall clock, less `shift` ms
    async with EmulatorServer(seed=3, clock=lambda: time.time_ns() // 10**6 - shift[0]) as emulator:
        await _paid_while_down(
            flip_once_dry_run(emulator.base_url, run_dirs), emulator, shift, run_dirs
        )


async def test_a_passing_failure_of_the_funding_history_is_asked_again(
    in_repo: Path, run_dirs: dict[str, str]
) -> None:
    """The restart reads the funding history once: a 503 or a timeout there left the
    downtime's settlements uncharged for good (a warning), as if the position had paid
    nothing. It is asked again like any request that must be answered."""
    shift = [0]
    async with EmulatorServer(seed=3, clock=lambda: time.time_ns() // 10**6 - shift[0]) as emulator:
        await _paid_while_down(
            flip_once_dry_run(emulator.base_url, run_dirs), emulator, shift, run_dirs,
            Fault(kind="status", method="GET", path="/fapi/v1/fundingRate", count=2),
        )  # fmt: skip


async def _paid_while_down(
    settings: Settings,
    emulator: EmulatorServer,
    shift: list[int],
    run_dirs: dict[str, str],
    fault: Fault | None = None,
) -> None:
    first = await run_bot(settings, progress=False, attach=_interrupted_once_long)
    assert first.status == "interrupted"
    [(held,)] = query(first.db_path, "SELECT SUM(CASE side WHEN 'buy' THEN size ELSE -size END)"
                      " FROM fills WHERE run_id=?", (first.run_id,))  # fmt: skip
    assert held > 0
    # down: the exchange settles funding twice, at two rates
    market = emulator.markets["ETHUSDT"]
    settled = []
    for rate, ago in ((0.0004, 1), (-0.0001, 0)):  # two settlement times (ms)
        shift[0] = ago
        market.funding_rate = rate
        emulator.settle_funding()
        settled.append((rate, market.mark))
    if fault is not None:
        emulator.inject(fault)
    resumed = await run_bot(settings, progress=False, resume="latest", attach=stopped_after_a_batch)
    assert resumed.run_id == first.run_id
    rows = query(first.db_path, "SELECT rate, mark, position, payment FROM funding"
                 " WHERE run_id=? ORDER BY ts", (first.run_id,))  # fmt: skip
    assert [(r[0], r[1]) for r in rows] == settled, rows
    for rate, mark, position, payment in rows:
        assert position == pytest.approx(held)
        assert payment == pytest.approx(-held * mark * rate)
    events = Path(run_dirs["log_dir"]) / "events.jsonl"
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    notes = [e["note"] for e in lines if e["type"] == "funding"]
    assert len(notes) == 2 and all("while the bot was down" in n for n in notes), notes
    log = (Path(run_dirs["log_dir"]) / "perps_bot.log").read_text()
    assert "2 funding settlements while the bot was down" in log
