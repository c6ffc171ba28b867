"""SPEC 9: a resumed paper run takes the trading state stored after its checkpoint:
`perps-bot resume-trading` lifts a drawdown REDUCING state as it lifts a halt."""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from perps_bot.config import Settings, load_settings
from perps_bot.domain import TradingState
from perps_bot.orchestrator.run_process import INTERRUPTED
from perps_bot.orchestrator.runner import Run, run_bot, run_bot_sync
from perps_emulator import EmulatorServer
from tests.badinput.harness import run_main
from tests.durable.helpers import checkpointer_of, query

#: REDUCING within hours of the dev strategy's trading, never HALTED
TINY_REDUCING = {"reducing_drawdown": 0.00002, "max_drawdown": 0.9}


def _settings(tmp: Path) -> Settings:
    run = {"dev_fast": True, "duration": "30d", "seed": 5, "log_dir": str(tmp / "logs"),
           "data_dir": str(tmp / "data")}  # fmt: skip
    return load_settings("dev", {"run": run, "risk": TINY_REDUCING})


@contextlib.asynccontextmanager
async def _interrupted_when_reducing(run: Run) -> AsyncIterator[None]:
    """Take a checkpoint as soon as the run is REDUCING, then interrupt it (Ctrl-C)."""
    orchestrator, checkpointer = run.orchestrator, checkpointer_of(run)

    def after_batch() -> None:
        checkpointer()
        if orchestrator.risk.state is TradingState.REDUCING and not orchestrator.stop_requested:
            checkpointer.save()
            orchestrator.request_stop(INTERRUPTED, interrupt=True)

    orchestrator.after_batch = after_batch
    yield


#: the trading state `_look` found
SEEN: list[TradingState] = []


@contextlib.asynccontextmanager
async def _look(run: Run) -> AsyncIterator[None]:
    """The resumed run's trading state, restored, before it trades again."""
    SEEN.append(run.orchestrator.risk.state)
    run.orchestrator.request_stop("seen")
    yield


def test_resume_trading_lifts_the_drawdown_reducing_state_of_a_resumed_run(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    first = run_bot_sync(settings, progress=False, attach=_interrupted_when_reducing)
    assert first.status == "interrupted"
    db = first.db_path
    assert query(db, "SELECT state FROM trading_state") == [("REDUCING",)]
    lifted = run_main(["resume-trading", "--db", str(db), "--reason", "checked"])
    assert lifted.code == 0 and "REDUCING -> ACTIVE" in lifted.out, lifted

    SEEN.clear()
    resumed = run_bot_sync(settings, progress=False, resume="latest", attach=_look)
    assert resumed.run_id == first.run_id
    assert SEEN == [TradingState.ACTIVE], "the operator lifted it: the resumed run trades"


STRATEGY = "tests.live.canary_strategy:FlipOnce"


def _dry_run(server: EmulatorServer, run_dirs: dict[str, str]) -> Settings:
    return load_settings(
        "canary",
        {
            "run": {
                "duration": "30s",
                "dry_run": True,
                "live_view": False,
                "equity_interval": "1s",
                **run_dirs,
            },
            "exchange": {"base_url": server.base_url, "poll_interval": "250ms"},
            "strategy": {"name": STRATEGY, "params": {"hold": 3}},
            # the entry's fee alone halts it
            "risk": {"max_drawdown": 1e-7, "reducing_drawdown": 1e-7},
        },
    )


@pytest.mark.integration
async def test_a_resumed_dry_run_keeps_the_halt_it_stored_after_its_checkpoint(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """A dry run replays another market after its checkpoint: its halt may not happen
    again, so the one it stored is kept (a dev run replays it exactly)."""
    settings = _dry_run(emulator, run_dirs)

    @contextlib.asynccontextmanager
    async def halt_then_stop(run: Run) -> AsyncIterator[None]:
        orchestrator, checkpointer = run.orchestrator, checkpointer_of(run)

        def after_batch() -> None:  # a checkpoint at every batch until the halt
            if orchestrator.risk.state is TradingState.HALTED:
                orchestrator.request_stop(INTERRUPTED, interrupt=True)  # Ctrl-C at once
            else:
                checkpointer.save()

        orchestrator.after_batch = after_batch
        yield

    first = await run_bot(settings, progress=False, attach=halt_then_stop)
    assert first.status == "interrupted"
    assert query(first.db_path, "SELECT state, run_id FROM trading_state") == [
        ("HALTED", first.run_id)
    ]
    assert query(first.db_path, "SELECT COUNT(*) FROM checkpoints") == [(1,)]

    SEEN.clear()
    resumed = await run_bot(settings, progress=False, resume="latest", attach=_look)
    assert resumed.run_id == first.run_id
    assert SEEN == [TradingState.HALTED], "only resume-trading lifts a halt"
    assert query(first.db_path, "SELECT state FROM trading_state") == [("HALTED",)]
