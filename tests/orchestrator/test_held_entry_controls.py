"""A session control taken while the entry of a flip is held back for its split close
(orchestrator.held_entries): the pause and the flatten dropped the strategy's waiting
signals but not the held entry, and a flatten saw the close on its way and sent
nothing. Once the close filled, the held entry went out: the paused, flattened
portfolio (long 250, target short 50) ended short 50."""

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from perps_bot.orchestrator.runner import Run, run_bot
from tests.harness.scripted import ScriptedFeed, quotes
from tests.harness.venue import ScriptedVenue
from tests.orchestrator.test_above_max_closes import BTC, big_account, entry_sells, orders_and_fills
from tests.orchestrator.test_one_truth import START_MS


@pytest.mark.parametrize("control", ["pause", "flatten"])
async def test_a_control_drops_the_entry_a_flip_holds_back(tmp_path: Path, control: str) -> None:
    settings = big_account(tmp_path, "2:100,4:200,6:250,10:-50")
    venue = ScriptedVenue([])
    feed = ScriptedFeed(quotes(BTC, [60_000.0] * 20, start_ms=START_MS))

    @contextlib.asynccontextmanager
    async def control_while_held(run: Run) -> AsyncIterator[None]:
        orchestrator = run.orchestrator
        portfolio = orchestrator.primary

        async def watch() -> None:
            while not portfolio.flow.held.by_symbol:
                await asyncio.sleep(0)
            if control == "pause":
                orchestrator.pause(portfolio)
            else:
                orchestrator.flatten(portfolio, "flatten (API)")

        task = asyncio.create_task(watch())
        try:
            yield
        finally:
            task.cancel()

    result = await run_bot(settings, feed=feed, venue=venue, progress=False,
                           attach=control_while_held)  # fmt: skip
    assert result.status == "completed"
    assert entry_sells(venue) == [], "the held entry went out after the control"
    _, fills = orders_and_fills(result)
    assert fills[-1][3] == pytest.approx(0.0), fills  # the split close left it flat
    with sqlite3.connect(result.db_path) as conn:
        denied = conn.execute("SELECT detail FROM denials WHERE run_id=?",
                              (result.run_id,)).fetchall()  # fmt: skip
    assert any("the entry of a flip, not sent" in d for (d,) in denied), denied
