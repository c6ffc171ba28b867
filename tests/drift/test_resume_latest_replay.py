"""`replay --capture DIR --resume` without a run id goes on with the latest interrupted
(or crashed) replay of that capture (its help: "an interrupted or crashed replay of this
capture (RUN_ID, or none: the latest)"). Measured on main it took the latest paper run
of the replay kind, whatever capture it replayed: with an interrupted replay of another
capture after this one's, the resume was refused ("it was started with another
mock.start", exit 2) and this capture's replay could only be resumed by its id."""

import asyncio
from pathlib import Path

import pytest

from perps_bot.cli.app import main
from perps_bot.domain import BookSnapshot
from perps_bot.feeds.replay import ReplayFeed
from perps_bot.orchestrator.replay import FillChoice, replay_settings
from perps_bot.orchestrator.runner import run_bot
from perps_bot.storage.capture import CaptureWriter
from tests.drift.test_replay_own_prints import ASKS, BIDS, CONFIG
from tests.drift.test_resumed_replay import _interrupted_after


def _capture(folder: Path, run_id: str, start: int) -> None:
    """A dry run's capture of 24 books a second apart from `start`."""
    meta = {"kind": "dry_run", "run_id": run_id, "config": CONFIG, "instruments": {}}
    writer = CaptureWriter(folder, meta)
    writer.events([BookSnapshot(start + i * 1_000, "ETH-PERP", BIDS, ASKS, last=99.98,
                                mark=99.98) for i in range(24)])  # fmt: skip
    writer.close()


async def test_resume_without_a_run_id_is_the_latest_replay_of_this_capture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "replays.sqlite"
    cut = {}
    for name, start in (("a", 1_000), ("b", 500_000)):  # b's replay is the later one
        folder = tmp_path / name
        _capture(folder, f"20261201T00000{start % 7}-canary-{name * 6}", start)
        settings = replay_settings(ReplayFeed(folder), FillChoice(), db=str(db))
        cut[name] = await run_bot(settings, feed=ReplayFeed(folder, batch_size=4),
                                  progress=False, attach=_interrupted_after(2))  # fmt: skip
        assert cut[name].status == "interrupted"

    def resume() -> int | str | None:
        with pytest.raises(SystemExit) as exited:
            main(["replay", "--capture", str(tmp_path / "a"), "--db", str(db), "--resume"])
        return exited.value.code

    code = await asyncio.to_thread(resume)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"replay {cut['a'].run_id} of 20261201T000006-canary-aaaaaa completed" in out
    # none of this capture's is left to resume (b's is, of another capture): one line
    code = await asyncio.to_thread(resume)
    err = capsys.readouterr().err
    assert code == 2
    assert "no crashed or interrupted dev run replaying 20261201T000006-canary-aaaaaa" in err
    assert len(err.strip().splitlines()) == 1
