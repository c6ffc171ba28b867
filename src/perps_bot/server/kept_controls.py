"""The controls a session's API answered (pauses, flattens, prompts), carried over to
the run the session goes on with after the server restarted (server.manager keeps
them in its sessions table before it answers; SPEC 11).
"""

import logging
import sqlite3
from dataclasses import dataclass

from perps_bot.orchestrator.portfolio import Portfolio
from perps_bot.orchestrator.wiring import Run
from perps_bot.server import planning
from perps_bot.server.session import FLATTEN, Session
from perps_bot.storage import sessions as table
from perps_bot.strategies.llm_planner import LlmPlanner

log = logging.getLogger("perps_bot.server")


@dataclass(frozen=True, slots=True)
class KeptControls:
    """A session's controls as its table kept them: the paused portfolios (None: a
    session that had none kept), the flattens the API took and, of those, the ones
    whose closes were made (by portfolio id)."""

    paused: set[str] | None
    flattens: dict[str, int]
    flattened: dict[str, int]


def controls_kept(
    s: Session, run: Run, kept: KeptControls, db: sqlite3.Connection, *, resumed: bool, live: bool
) -> None:
    """The controls the API answered before a restart, on the run the session goes
    on with. A paper session's run (`resumed`) goes on from its last checkpoint: a
    flatten the API took after it (counted in the sessions table beyond the count
    the checkpoint holds) is applied again, once; one the checkpoint holds is in
    its books or its pending closes already. A live session's new run reconciles
    with the exchange, where the flattens' closes went: it counts on from them and
    sends none again, but for a flatten the API answered whose closes were never
    made (the process killed before the run's next event): that one is carried out
    (`_live_flattens`). The API's prompts are given again (a new run, or a checkpoint
    before them, has the profile's). Then the pauses: a resume after the checkpoint
    resumes."""
    paused, flattens, flattened = kept.paused, kept.flattens, kept.flattened
    orchestrator, due = run.orchestrator, []
    for p in orchestrator.portfolios:
        taken = flattens.get(p.id, 0)
        if resumed and taken > p.flattens:
            orchestrator.pause(p)
            orchestrator.flatten(p, FLATTEN)  # taken up in the batch of the kill
        elif live and taken > flattened.get(p.id, taken):
            taken -= 1  # counted again when it is carried out
            due.append(p)
        p.flattens = max(p.flattens, taken)
        if p.id in s.prompts and isinstance(p.strategy, LlmPlanner):
            planning.use_prompt(run, p, p.strategy, *s.prompts[p.id])  # the checkpoint
            # may predate it; a new run: its fingerprint is the prompt's
        if paused is not None and p.paused and p.id not in paused:
            orchestrator.resume(p)  # resumed after the checkpoint
        if paused is not None and p.id in paused and not p.paused:
            orchestrator.pause(p)  # paused after the checkpoint
    if live:
        _live_flattens(s, run, due, db)


def _live_flattens(s: Session, run: Run, due: list[Portfolio], db: sqlite3.Connection) -> None:
    """A live session's run keeps, after each batch, how many of its flattens made
    their closes (their intents are stored before their requests leave, and the
    start's recovery and reconciliation settle them): a kill between the API's
    answer and that batch leaves one to carry out at the next start. The `due` ones
    are: at the end of the run's first batch, once the books hold the exchange's
    positions and the market has prices for the risk gate."""
    orchestrator = run.orchestrator
    then, kept = orchestrator.after_batch, s.flattened()

    def after_batch() -> None:
        if then is not None:
            then()
        while due:
            p = due.pop(0)
            log.warning("session %s: portfolio %s: the flatten the API answered before"
                        " the restart had not made its closes: it closes what the"
                        " portfolio holds now", s.id, p.id)  # fmt: skip
            orchestrator.pause(p)
            orchestrator.flatten(p, FLATTEN)
            s.save_soon()
        done = s.flattened()
        if done != kept:
            kept.clear()
            kept.update(done)
            table.set_flattened(db, s.id, done)

    orchestrator.after_batch = after_batch
