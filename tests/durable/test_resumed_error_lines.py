"""SPEC 6 and 9: a resumed run's ERROR and WARNING lines are those of all its parts.
Promotion's `error_lines` criterion reads the run's count; the resumed process stored
only what it logged itself over the count of the part before the interruption, so a
run whose errors were logged before a Ctrl-C passed "no ERROR log lines" once resumed."""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from perps_bot.config import load_settings
from perps_bot.orchestrator.run_process import INTERRUPTED
from perps_bot.orchestrator.runner import Run, run_bot_sync
from perps_bot.storage import RunStore
from tests.durable.helpers import checkpointer_of


@contextlib.asynccontextmanager
async def _interrupted_after_a_batch(run: Run) -> AsyncIterator[None]:
    """Checkpointed and interrupted after its first batch (a Ctrl-C)."""
    orchestrator, checkpointer = run.orchestrator, checkpointer_of(run)

    def after_batch() -> None:
        checkpointer.save()
        orchestrator.request_stop(INTERRUPTED, interrupt=True)

    orchestrator.after_batch = after_batch
    yield


def test_a_resumed_run_keeps_the_error_lines_of_its_first_part(tmp_path: Path) -> None:
    run = {"dev_fast": True, "duration": "6h", "seed": 5, "live_view": False,
           "log_dir": str(tmp_path / "logs"), "data_dir": str(tmp_path / "data")}  # fmt: skip
    strategy = {"name": "tests.cli_report.grumbling_strategy:Grumbling"}
    settings = load_settings("dev", {"run": run, "strategy": strategy})
    first = run_bot_sync(settings, progress=False, attach=_interrupted_after_a_batch)
    assert first.status == "interrupted"
    with RunStore(first.db_path) as store:
        before = store.run(first.run_id)
    assert before.error_lines == 1  # the strategy's, at its start

    resumed = run_bot_sync(settings, progress=False, resume=first.run_id)
    assert resumed.run_id == first.run_id and resumed.status == "completed"
    with RunStore(first.db_path) as store:
        after = store.run(first.run_id)
    assert after.error_lines == 1, "the first part's error is the run's"
    assert after.warning_lines == before.warning_lines + 1  # "run ... resumed from ..."
