"""SPEC 9 and 12: a paper run killed after its halt but before its next checkpoint
replays, when resumed, the events that halted it, and halts again at the same moment.
That halt was stored (and alerted) when it happened: the resumed run journals its
replay as such and does not send a second HALTED alert for it (measured on main: two
alerts for the one halt)."""

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

from perps_bot.config import Settings, load_settings
from perps_bot.domain import TradingState
from perps_bot.orchestrator.run_process import INTERRUPTED
from perps_bot.orchestrator.runner import Run, run_bot_sync
from tests.badinput.harness import run_main
from tests.durable.helpers import checkpointer_of, query
from tests.harness.alert_receiver import alert_receiver

#: a drawdown of a few dollars on 100k halts the dev strategy within hours
TINY_DRAWDOWN = {"max_drawdown": 0.00002, "reducing_drawdown": 0.00002}


def _settings(tmp: Path, port: int) -> Settings:
    run = {"dev_fast": True, "duration": "2d", "seed": 5, "log_dir": str(tmp / "logs"),
           "data_dir": str(tmp / "data")}  # fmt: skip
    alerts = {"urls": [f"json://127.0.0.1:{port}"], "on": ["halt"]}
    return load_settings("dev", {"run": run, "risk": TINY_DRAWDOWN, "alerts": alerts})


@contextlib.asynccontextmanager
async def _killed_after_the_halt(run: Run) -> AsyncIterator[None]:
    """A checkpoint at every batch until the halt, then none: stopped at once, as a
    kill would leave it (the last checkpoint is from before the halt)."""
    orchestrator, checkpointer = run.orchestrator, checkpointer_of(run)

    def after_batch() -> None:
        if orchestrator.risk.state is TradingState.HALTED:
            orchestrator.request_stop(INTERRUPTED, interrupt=True)
        else:
            checkpointer.save()

    orchestrator.after_batch = after_batch
    orchestrator.save_due = None  # a kill: no checkpoint at the stop either
    yield


def test_a_resumed_run_does_not_announce_its_replayed_halt_again(tmp_path: Path) -> None:
    with alert_receiver() as (port, received):
        settings = _settings(tmp_path, port)
        first = run_bot_sync(settings, progress=False, attach=_killed_after_the_halt)
        assert first.status == "interrupted"
        stored = query(first.db_path, "SELECT state, run_id FROM trading_state")
        assert stored == [("HALTED", first.run_id)], "stored the moment it happened"
        assert len(received) == 1, received

        resumed = run_bot_sync(settings, progress=False, resume="latest")
    assert resumed.run_id == first.run_id and resumed.status == "completed"
    halts = [r["message"] for r in received if r["title"].endswith(": HALTED")]
    assert len(halts) == 1, halts
    events = [json.loads(line) for line in (tmp_path / "logs" / "events.jsonl").open()]
    changes = [e for e in events if e["type"] == "state_change" and e["state"] == "HALTED"]
    assert [bool(e.get("replayed")) for e in changes] == [False, True], changes
    assert query(first.db_path, "SELECT state FROM trading_state") == [("HALTED",)]


def test_a_halt_lifted_after_the_kill_stays_lifted_when_the_run_is_resumed(
    tmp_path: Path,
) -> None:
    """The operator lifts the halt with resume-trading, then resumes the run: its
    replay reached the same halt again, kept it for the rest of the run and stored it
    over the lift (measured on main: not one fill after the halt, HALTED stored). The
    replayed halt is now lifted again at once, as resume-trading said: the peak
    restarts at that moment's equity and the run trades on."""
    with alert_receiver() as (port, received):
        settings = _settings(tmp_path, port)
        first = run_bot_sync(settings, progress=False, attach=_killed_after_the_halt)
        db = first.db_path
        lifted = run_main(["resume-trading", "--db", str(db), "--reason", "checked"])
        assert lifted.code == 0 and "HALTED -> ACTIVE" in lifted.out, lifted
        resumed = run_bot_sync(settings, progress=False, resume="latest")
    assert resumed.run_id == first.run_id and resumed.status == "completed"
    assert resumed.fills > first.fills, "the lifted run trades on after the halt"
    events = [json.loads(line) for line in (tmp_path / "logs" / "events.jsonl").open()]
    mine = [e for e in events if e["type"] == "state_change" and e["run_id"] == first.run_id]
    assert [e["state"] for e in mine[:3]] == ["HALTED", "HALTED", "ACTIVE"], mine
    assert mine[1].get("replayed") and "resume-trading: checked" in mine[2]["detail"]
    # a later halt of the tiny limit is a new one, alerted; the replayed one is not
    new = [e for e in mine if e["state"] == "HALTED" and not e.get("replayed")]
    assert len([r for r in received if r["title"].endswith(": HALTED")]) == len(new)
    stored = query(db, "SELECT state, detail FROM trading_state")
    assert stored[0][0] == "ACTIVE" or stored[0][1] != mine[0]["detail"].split(";")[0]


def test_a_halt_is_checkpointed_at_once(tmp_path: Path) -> None:
    """A paper run takes a checkpoint every few seconds of wall time; one killed
    between its halt and the next checkpoint replayed the halt when resumed (a hosted
    session, which stores no trading state, alerted it a second time). The batch in
    which the trading state changes ends with a checkpoint."""

    @contextlib.asynccontextmanager
    async def stopped_after_the_halt(run: Run) -> AsyncIterator[None]:
        orchestrator, checkpointer = run.orchestrator, checkpointer_of(run)
        checkpointer.every_s = 1e9  # no checkpoint for the time that passes

        def after_batch() -> None:
            checkpointer()
            if orchestrator.risk.state is TradingState.HALTED:
                orchestrator.request_stop(INTERRUPTED, interrupt=True)

        orchestrator.after_batch = after_batch
        yield

    with alert_receiver() as (port, _):
        settings = _settings(tmp_path, port)
        first = run_bot_sync(settings, progress=False, attach=stopped_after_the_halt)
    events = [json.loads(line) for line in (tmp_path / "logs" / "events.jsonl").open()]
    (halt,) = [e for e in events if e["type"] == "state_change" and e["state"] == "HALTED"]
    assert query(first.db_path, "SELECT ts >= ? FROM checkpoints", (halt["ts"],)) == [(1,)]
