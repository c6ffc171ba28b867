"""SPEC 9 and 14: a dry run resumed from its checkpoint goes on recording its capture,
and the capture says when the run was down: a replay or a drift over it warns of the
gap. The resumed part was never captured, and nothing said so: drift compared the whole
run with a replay of its first part as if the capture were whole."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perps_bot.cli.app import app
from perps_bot.config import Settings, load_settings
from perps_bot.domain import iso_utc
from perps_bot.feeds.replay import ReplayFeed
from perps_bot.orchestrator.run_process import INTERRUPTED
from perps_bot.orchestrator.runner import Run, run_bot
from perps_emulator import EmulatorServer
from tests.durable.helpers import checkpointer_of

pytestmark = pytest.mark.integration


def _settings(emulator: EmulatorServer, run_dirs: dict[str, str], db: Path) -> Settings:
    return load_settings("canary", {
        "run": {"duration": "60s", "dry_run": True, "live_view": False, "database": str(db),
                **run_dirs},
        "exchange": {"base_url": emulator.base_url, "poll_interval": "100ms"},
        "strategy": {"name": "tests.drift.drift_strategy:DriftProbe", "params": {"every": 2}},
    })  # fmt: skip


def _stopped_after(batches: int, *, interrupt: bool) -> object:
    """A checkpoint after every batch; stopped after `batches` (Ctrl-C: `interrupt`)."""

    @contextlib.asynccontextmanager
    async def attach(run: Run) -> AsyncIterator[None]:
        orchestrator, checkpointer = run.orchestrator, checkpointer_of(run)
        seen = [0]

        def after_batch() -> None:
            checkpointer.save()
            seen[0] += 1
            if seen[0] == batches:
                orchestrator.request_stop(INTERRUPTED if interrupt else "seen",
                                          interrupt=interrupt)  # fmt: skip

        orchestrator.after_batch = after_batch
        yield

    return attach


async def test_a_resumed_dry_run_captures_on_and_drift_names_the_gap(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer, tmp_path: Path
) -> None:
    db = tmp_path / "canary.sqlite"
    settings = _settings(emulator, run_dirs, db)
    first = await run_bot(settings, progress=False, attach=_stopped_after(6, interrupt=True))  # type: ignore[arg-type]
    assert first.status == "interrupted"
    folder = Path(run_dirs["data_dir"]) / "captures" / first.run_id
    before = ReplayFeed(folder).events()
    resumed = await run_bot(
        settings, progress=False, resume="latest", attach=_stopped_after(6, interrupt=False)
    )  # type: ignore[arg-type]
    assert resumed.run_id == first.run_id
    meta = json.loads((folder / "meta.json").read_text())
    [gap] = meta["gaps"]
    assert gap["closed"] is True and gap["from"] < gap["until"], gap
    after = ReplayFeed(folder).events()
    assert len(after) > len(before), "the resumed part was not captured"
    assert after[len(before) - 1].ts < gap["until"] <= after[len(before)].ts
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["drift", "--live", first.run_id, "--db", str(db), "--format",
                                  "json"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if "incomplete" in line]
    assert len(warning) == 1, result.stderr
    assert f"resumed at {iso_utc(gap['until'])} from its checkpoint at {iso_utc(gap['from'])}" \
        in warning[0], warning  # fmt: skip
