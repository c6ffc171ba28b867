"""A run stopped as it starts (a stop answered while its venue starts) takes no batch
and sends nothing. Compiled (mypyc), its empty feed was an async generator compiled as
a plain one, and the loop failed with a TypeError instead (found through a live
session's tests, stop 40; tests/architecture/test_compiled_awaits.py keeps async
generators out of the compiled modules).
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from perps_bot.config import load_settings
from perps_bot.orchestrator.runner import Run, run_bot
from tests.harness.scripted import ScriptedFeed, quotes
from tests.harness.venue import ScriptedVenue

START_MS = 1_704_067_200_000
HOLD = "tests.backtest.start_strategy:HoldFromStart"  # goes long in on_start


def _config(tmp_path: Path) -> dict[str, object]:
    return {"run": {"dev_fast": True, "seed": 5, "log_dir": str(tmp_path / "logs"),
                    "data_dir": str(tmp_path / "data"), "live_view": False}}  # fmt: skip


class _StoppedWhileStarting(ScriptedVenue):
    """Runs `on_start` (the session API's stop, answered meanwhile) as it starts."""

    on_start: Callable[[], None] = staticmethod(lambda: None)

    async def start(self) -> None:
        await super().start()
        await asyncio.sleep(0)
        self.on_start()


def test_a_run_stopped_as_its_venue_starts_takes_no_batch_and_sends_nothing(
    tmp_path: Path,
) -> None:
    settings = load_settings("dev", _config(tmp_path) | {"strategy": {"name": HOLD}})
    feed = ScriptedFeed(quotes("BTC-PERP", [100.0] * 5, start_ms=START_MS))
    venue = _StoppedWhileStarting([])

    @contextlib.asynccontextmanager
    async def stop_while_starting(run: Run) -> AsyncIterator[None]:
        venue.on_start = lambda: run.orchestrator.request_stop("stopped", interrupt=True)
        yield

    result = asyncio.run(
        run_bot(settings, feed=feed, venue=venue, progress=False, attach=stop_while_starting)
    )
    assert result.status == "interrupted", result
    assert venue.calls[0] == "venue.start" and venue.submitted == [], venue.calls
    assert feed.stopped and result.fills == 0
