"""SPEC 9 with SPEC 16: a resumed paper run executes again the plan rows it executed
after its checkpoint (their orders and fills were rewound with the rest), so it ends
with the fills of an uninterrupted run."""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from perps_bot.config import Settings, load_settings
from perps_bot.orchestrator.run_process import INTERRUPTED
from perps_bot.orchestrator.runner import Run, run_bot_sync
from tests.durable.helpers import checkpointer_of, fills
from tests.plans.helpers import write_plan


def _settings(tmp: Path, plan: Path, name: str) -> Settings:
    run = {"dev_fast": True, "duration": "12h", "seed": 5, "log_dir": str(tmp / "logs"),
           "database": str(tmp / f"{name}.sqlite")}  # fmt: skip
    strategy = {"name": "plan", "params": {"file": str(plan)}}
    return load_settings("dev", {"run": run, "strategy": strategy})


@contextlib.asynccontextmanager
async def _interrupted_after_the_first_row(run: Run) -> AsyncIterator[None]:
    """A checkpoint at every batch until the plan executed a row, then Ctrl-C: the row
    was executed after the last checkpoint."""
    orchestrator, checkpointer = run.orchestrator, checkpointer_of(run)

    def after_batch() -> None:
        if orchestrator.strategy.state():
            orchestrator.request_stop(INTERRUPTED, interrupt=True)
        else:
            checkpointer.save()

    orchestrator.after_batch = after_batch
    yield


def test_a_resumed_run_executes_again_the_plan_rows_it_executed_after_its_checkpoint(
    tmp_path: Path,
) -> None:
    plan = write_plan(
        tmp_path / "plan.csv",
        [
            {"id": "a", "side": "long", "size": 0.01, "entry": "market",
             "valid_from": "2024-01-01T02:00:00Z"},
            {"id": "b", "side": "flat", "valid_from": "2024-01-01T06:00:00Z"},
        ],
    )  # fmt: skip
    reference = run_bot_sync(_settings(tmp_path, plan, "reference"), progress=False)
    expected = fills(tmp_path / "reference.sqlite", reference.run_id)
    assert len(expected) == 2

    settings = _settings(tmp_path, plan, "killed")
    first = run_bot_sync(settings, progress=False, attach=_interrupted_after_the_first_row)
    assert first.status == "interrupted"
    resumed = run_bot_sync(settings, progress=False, resume="latest")
    assert (resumed.run_id, resumed.status) == (first.run_id, "completed")
    assert fills(tmp_path / "killed.sqlite", first.run_id) == expected
