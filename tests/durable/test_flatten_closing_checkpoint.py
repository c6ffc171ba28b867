"""A flatten whose close the risk gate denied (the portfolio halted) keeps closing
after a kill: the checkpoint holds that the flatten is not done, and the run that goes
on from it closes the position once the halt is lifted (orchestrator.controls
`close_again`)."""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from perps_bot.orchestrator.run_process import INTERRUPTED
from perps_bot.orchestrator.runner import Run, run_bot
from perps_bot.server.session import Session
from tests.durable.helpers import checkpointer_of
from tests.durable.test_control_checkpoint import SYMBOL, _settings


async def test_a_flatten_denied_by_a_halt_closes_after_a_kill_once_the_halt_is_lifted(
    in_repo: Path, run_dirs: dict[str, str]
) -> None:
    settings = _settings(run_dirs)
    session = Session("s1", controls=True, created_at=0, portfolio_ids=[])
    denied: list[float] = []

    @contextlib.asynccontextmanager
    async def flatten_halted_then_kill(run: Run) -> AsyncIterator[None]:
        """Once a position is held: a halt and the API's flatten; once its close was
        denied, a checkpoint and the process killed."""
        orchestrator, checkpointer = run.orchestrator, checkpointer_of(run)
        p = orchestrator.portfolios[0]
        flattened: list[bool] = []

        def after_batch() -> None:
            if not flattened and p.ledger.position_size(SYMBOL) != 0.0:
                p.risk.halt("operator")
                session.control(p.id, "flatten")
                flattened.append(True)
            elif flattened and not denied and p.flattening is None:
                denied.append(p.ledger.position_size(SYMBOL))
                checkpointer.save()
                orchestrator.request_stop(INTERRUPTED, interrupt=True)

        orchestrator.after_batch = after_batch
        async with session.attached(run):
            yield

    first = await run_bot(settings, progress=False, attach=flatten_halted_then_kill)  # type: ignore[arg-type]
    assert first.status == "interrupted"
    assert denied and denied[0] != 0.0, "the close was denied: the position is held"

    ends: list[float] = []

    @contextlib.asynccontextmanager
    async def lift_the_halt(run: Run) -> AsyncIterator[None]:
        p = run.orchestrator.portfolios[0]
        assert p.paused and p.ledger.position_size(SYMBOL) == denied[0]
        p.risk.resume()  # resume-trading
        yield
        ends.append(p.ledger.position_size(SYMBOL))

    resumed = await run_bot(settings, progress=False, resume=first.run_id, attach=lift_the_halt)  # type: ignore[arg-type]
    assert resumed.status == "completed"
    assert ends == [0.0], "the flattened portfolio held its position"
