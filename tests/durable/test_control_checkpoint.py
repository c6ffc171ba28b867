"""A session control the API answered is not lost with the process (SPEC 9, 11): a
flatten's closes and a resume's restatement wait in the portfolio's pending signals
until the next event; a checkpoint taken in between, then a kill, and the run that goes
on from it still closes (or restates)."""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from perps_bot.config import load_settings
from perps_bot.orchestrator.run_process import INTERRUPTED
from perps_bot.orchestrator.runner import Run, run_bot
from perps_bot.server.session import Session
from tests.durable.helpers import checkpointer_of, query

SYMBOL = "BTC-PERP"


def _settings(run_dirs: dict[str, str]) -> object:
    return load_settings("dev", {
        "run": {"dev_fast": True, "duration": "2d", "seed": 7, "symbols": [SYMBOL],
                "live_view": False, **run_dirs},
        "strategy": {"name": "sma_cross", "timeframe": "1m", "params": {"fast": 3, "slow": 8}},
    })  # fmt: skip


async def test_a_flatten_checkpointed_before_its_next_event_closes_after_a_kill(
    in_repo: Path, run_dirs: dict[str, str]
) -> None:
    settings = _settings(run_dirs)
    session = Session("s1", controls=True, created_at=0, portfolio_ids=[])
    answers: list[dict[str, object]] = []

    @contextlib.asynccontextmanager
    async def flatten_then_kill(run: Run) -> AsyncIterator[None]:
        """Between two batches, once a position is held: the API's flatten, a
        checkpoint, and the process killed before the next event."""
        orchestrator, checkpointer = run.orchestrator, checkpointer_of(run)
        p = orchestrator.portfolios[0]

        def after_batch() -> None:
            if not answers and p.ledger.position_size(SYMBOL) != 0.0:
                answers.append(session.control(p.id, "flatten"))
                checkpointer.save()
                orchestrator.request_stop(INTERRUPTED, interrupt=True)

        orchestrator.after_batch = after_batch
        async with session.attached(run):
            yield

    first = await run_bot(settings, progress=False, attach=flatten_then_kill)  # type: ignore[arg-type]
    assert first.status == "interrupted"
    assert answers and answers[0]["closing"] == 1, answers

    ends: list[float] = []

    @contextlib.asynccontextmanager
    async def look(run: Run) -> AsyncIterator[None]:
        p = run.orchestrator.portfolios[0]
        assert p.paused, "the flatten's pause is kept"
        yield
        ends.append(p.ledger.position_size(SYMBOL))

    resumed = await run_bot(settings, progress=False, resume=first.run_id, attach=look)  # type: ignore[arg-type]
    assert resumed.status == "completed"
    assert ends == [0.0], "the flatten the API answered closed the position"
    closes = query(first.db_path, "SELECT COUNT(*) FROM orders WHERE run_id=? AND reason=?",
                   (first.run_id, "flatten (session API)"))  # fmt: skip
    assert closes == [(1,)]


async def test_a_control_is_checkpointed_with_the_batch_it_came_in(
    in_repo: Path, run_dirs: dict[str, str]
) -> None:
    """Not seconds of wall time later: a kill in between lost the control."""
    settings = _settings(run_dirs)
    session = Session("s1", controls=True, created_at=0, portfolio_ids=[])
    saved: list[int] = []

    @contextlib.asynccontextmanager
    async def pause_once(run: Run) -> AsyncIterator[None]:
        orchestrator, checkpointer = run.orchestrator, checkpointer_of(run)
        p = orchestrator.portfolios[0]

        def after_batch() -> None:
            checkpointer()
            if saved:
                saved.append(checkpointer.saved)
                orchestrator.request_stop(INTERRUPTED, interrupt=True)
            elif orchestrator.last_ts is not None:
                session.control(p.id, "pause")
                saved.append(checkpointer.saved)

        orchestrator.after_batch = after_batch
        async with session.attached(run):
            yield

    await run_bot(settings, progress=False, attach=pause_once)  # type: ignore[arg-type]
    assert len(saved) == 2 and saved[1] == saved[0] + 1, saved


async def test_a_flatten_asked_twice_sends_its_closes_once(
    in_repo: Path, run_dirs: dict[str, str]
) -> None:
    """Flatten asked again before the first one's close has filled (a second click): the
    close went out twice (the second refused or cancelled as the position was gone)."""
    settings = _settings(run_dirs)
    session = Session("s1", controls=True, created_at=0, portfolio_ids=[])
    answers: list[dict[str, object]] = []

    @contextlib.asynccontextmanager
    async def flatten_twice(run: Run) -> AsyncIterator[None]:
        orchestrator = run.orchestrator
        p = orchestrator.portfolios[0]

        def after_batch() -> None:
            if not answers and p.ledger.position_size(SYMBOL) != 0.0:
                answers.append(session.control(p.id, "flatten"))
                answers.append(session.control(p.id, "flatten"))

        orchestrator.after_batch = after_batch
        async with session.attached(run):
            yield

    done = await run_bot(settings, progress=False, attach=flatten_twice)  # type: ignore[arg-type]
    assert [a["closing"] for a in answers] == [1, 0], answers
    closes = query(done.db_path, "SELECT COUNT(*) FROM orders WHERE run_id=? AND reason=?",
                   (done.run_id, "flatten (session API)"))  # fmt: skip
    assert closes == [(1,)]


async def test_a_flatten_right_after_a_resume_leaves_the_portfolio_flat(
    in_repo: Path, run_dirs: dict[str, str]
) -> None:
    """Resumed, then flattened before the next event: the strategy's restatement (the
    position it wants, pending) went out after the flatten and opened the position the
    trader had just closed, the portfolio paused with it."""
    settings = _settings(run_dirs)
    session = Session("s1", controls=True, created_at=0, portfolio_ids=[])
    seen: list[float] = []
    steps: list[str] = []

    @contextlib.asynccontextmanager
    async def resume_then_flatten(run: Run) -> AsyncIterator[None]:
        orchestrator = run.orchestrator
        p = orchestrator.portfolios[0]

        def after_batch() -> None:
            if not steps:
                session.control(p.id, "pause")
                steps.append("paused")
            elif steps[-1] == "paused":  # resumed: the strategy states what it wants
                session.control(p.id, "resume")
                if p.pending:
                    session.control(p.id, "flatten")
                    steps.append("flattened")
                else:
                    session.control(p.id, "pause")  # it wants nothing yet: again later
            elif len(steps) < 4:
                steps.append("batch")
            else:
                seen.append(p.ledger.position_size(SYMBOL))
                orchestrator.request_stop(INTERRUPTED, interrupt=True)

        orchestrator.after_batch = after_batch
        async with session.attached(run):
            yield

    await run_bot(settings, progress=False, attach=resume_then_flatten)  # type: ignore[arg-type]
    assert seen == [0.0], (steps, "the flatten left the restated position open")


async def test_a_pause_right_after_a_resume_keeps_the_strategy_unheard(
    in_repo: Path, run_dirs: dict[str, str]
) -> None:
    """Resumed, then paused again before the next event: the strategy's restatement
    (pending) still went out, and the paused portfolio flipped to the side its strategy
    wanted."""
    settings = _settings(run_dirs)
    session = Session("s1", controls=True, created_at=0, portfolio_ids=[])
    seen: list[float] = []
    steps: list[str] = []

    @contextlib.asynccontextmanager
    async def resume_then_pause(run: Run) -> AsyncIterator[None]:
        orchestrator = run.orchestrator
        p = orchestrator.portfolios[0]

        def after_batch() -> None:
            if not steps:
                session.control(p.id, "pause")
                steps.append("paused")
            elif steps[-1] == "paused":  # resumed: the strategy states what it wants
                session.control(p.id, "resume")
                if p.pending or p.restate:  # a restatement waits for the next event
                    seen.append(p.ledger.position_size(SYMBOL))
                    steps.append("paused again")
                session.control(p.id, "pause")
            elif len(steps) < 4:
                steps.append("batch")
            else:
                seen.append(p.ledger.position_size(SYMBOL))
                orchestrator.request_stop(INTERRUPTED, interrupt=True)

        orchestrator.after_batch = after_batch
        async with session.attached(run):
            yield

    await run_bot(settings, progress=False, attach=resume_then_pause)  # type: ignore[arg-type]
    assert len(seen) == 2 and seen[0] == seen[1], (steps, seen)
