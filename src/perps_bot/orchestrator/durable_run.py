"""What makes a wired run durable (SPEC 9): a resumed run restored from its checkpoint,
checkpoints taken (paper runs) or the store flushed every few seconds (live runs), each
portfolio's trading state imported and stored at every change (runs that trade the
profile's account), and a live account's protective levels and held entries kept
across restarts. Part of building a run (orchestrator.wiring).
"""

from collections.abc import Callable

from perps_bot.config import Settings
from perps_bot.orchestrator import checkpoint
from perps_bot.orchestrator.engine import Orchestrator
from perps_bot.orchestrator.kept_entries import keep_held
from perps_bot.orchestrator.preflight import Preflight
from perps_bot.orchestrator.protective_levels import keep_levels
from perps_bot.orchestrator.trading_state import TradingStateKeeper, count_recent_orders, state_keys
from perps_bot.storage import RunRecord


def make_durable(
    settings: Settings,
    pre: Preflight,
    orchestrator: Orchestrator,
    resumed: RunRecord | None,
    start: int,
    keeps_state: bool,
) -> tuple[str | None, list[TradingStateKeeper]]:
    """SPEC 9 for this run: restore a resumed run from its checkpoint, take checkpoints
    (paper runs) or flush every few seconds (live runs), import each portfolio's stored
    trading state and store it at every change (runs that trade the profile's account,
    not a hosted session: `keeps_state`), and keep a live account's protective levels.
    Returns (where it resumed from, the keepers)."""
    spec, rec = pre.spec, orchestrator.rec
    resumed_from, kept = None, None
    if resumed is not None:
        try:
            resumed_from, kept = checkpoint.resume(
                orchestrator, rec.store, resumed, pre.code_version
            )
        except BaseException:
            rec.journal.close()
            rec.store.close()
            raise
    flush: checkpoint.PeriodicFlush | None = None
    if spec.resumable:
        flush = checkpoint.Checkpointer(orchestrator, pre.code_version, restored=kept)
    elif not spec.simulated_clock(settings):
        flush = checkpoint.PeriodicFlush(orchestrator)
    if flush is not None:
        orchestrator.after_batch, orchestrator.save_soon = flush, flush.soon
        orchestrator.save_due = flush.save_if_soon
        for p in orchestrator.portfolios:  # a state change is saved with its batch
            p.rec.on_state_change = flush.soon
    if isinstance(flush, checkpoint.Checkpointer):  # on the wall clock: no replay
        orchestrator.store_fills_with(flush.soon)
    if not keeps_state:
        return resumed_from, []
    keepers = []
    # the peak and the day's start measure books that go on: a live account whose balance
    # the one portfolio adopts; several start their own books at their capital
    same_account = spec.reconciles and len(orchestrator.portfolios) == 1
    keys = state_keys([p.id for p in orchestrator.portfolios])
    for p, key in zip(orchestrator.portfolios, keys, strict=True):
        keeper = TradingStateKeeper(rec.store, p.risk, settings.profile, p.rec.run_id, key)
        keeper.restore(same_account=same_account, resumed=resumed is not None,
                       journal=p.rec.journal, ts=orchestrator.last_ts or start,
                       replays=isinstance(orchestrator.feed, checkpoint.Stateful))  # fmt: skip
        p.rec.on_state_change = _both(keeper.save, p.rec.on_state_change)
        p.rec.replayed_state = keeper.replayed
        p.lifted = keeper.lifted
        keepers.append(keeper)
        if spec.reconciles and flush is not None:  # no checkpoint holds a live peak
            flush.also.append(keeper.save_if_moved)
    if spec.real_orders:  # the account's order rate spans its restarts
        count_recent_orders(rec.store, [(p.id, p.risk) for p in orchestrator.portfolios],
                            orchestrator.portfolios[0].flow.account, str(spec.mode),
                            orchestrator.clock.now())  # fmt: skip
    if spec.reconciles:  # a live account: its orders and stops outlive the run (SPEC 16)
        orchestrator.routes.recall = rec.store.order_portfolio
        keep_levels(orchestrator.portfolios, orchestrator.routes, rec.store, settings.profile,
                    orchestrator.clock.now)  # fmt: skip
        keep_held(orchestrator.portfolios, rec.store, settings.profile)
    return resumed_from, keepers


def _both(first: Callable[[], None], then: Callable[[], None] | None) -> Callable[[], None]:
    """`first`, then `then` when there is one."""
    if then is None:
        return first

    def both() -> None:
        first()
        then()

    return both
