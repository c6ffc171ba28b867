"""A run wired to a scripted venue without its loop: for tests that drive the
orchestrator's calls (start, reconcile) one by one."""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from rich.console import Console

from perps_bot.config import Settings
from perps_bot.monitoring import close_logging, setup_logging
from perps_bot.orchestrator.preflight import preflight
from perps_bot.orchestrator.wiring import Run, build_run
from tests.harness.scripted import ScriptedFeed
from tests.harness.venue import ScriptedVenue


@contextlib.asynccontextmanager
async def wired(cfg: Settings, venue: ScriptedVenue) -> AsyncIterator[Run]:
    """The run of `cfg` on `venue` (no events), closed afterwards as the runner closes
    one: its metrics too (left open, a later run of the profile in the process was
    exported summed with this one's, as a run still going is never replaced)."""
    pre = await preflight(cfg, say=lambda _: None)
    counter = setup_logging(Path(cfg.run.log_dir), "INFO", max_bytes=10**6, backups=1)
    run = await build_run(
        cfg, pre, counter, feed=ScriptedFeed([]), venue=venue, console=Console(), progress=False
    )
    try:
        yield run
    finally:
        if run.watchers is not None:
            run.watchers.close()
            await run.watchers.close_alerts()
        await run.orchestrator.close()
        run.store.close()
        run.journal.close()
        close_logging()
