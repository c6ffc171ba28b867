"""The rows that stand for a run in the store (storage.records): a new run's record, the
record of each portfolio's run in a run with several, the run id, and the runs a dead
process left `running`. What is recorded here is what reports, promotion and
`--resume` find a run by later; `open_run` opens the store for a run and makes or finds
its record.
"""

import contextlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from perps_bot.config import Settings
from perps_bot.orchestrator import checkpoint
from perps_bot.orchestrator.modes import MODES
from perps_bot.orchestrator.preflight import PlannedPortfolio, Preflight
from perps_bot.storage import RunRecord, RunStore, durable
from perps_bot.strategies import Strategy

log = logging.getLogger("perps_bot.run")


def new_run_id(profile: str) -> str:
    """Unique and sortable; never part of any report body (reports stay reproducible)."""
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{profile}-{secrets.token_hex(3)}"


def mark_crashed(store: RunStore) -> list[str]:
    """Runs left `running` by a process that is gone become `crashed` (the caller holds
    the database lock); their ids."""
    with store.transaction():
        crashed = durable.mark_crashed(store.connection)
    for run_id in crashed:
        log.warning("run %s was left running by a process that is gone: crashed", run_id)
    return crashed


def child_record(
    settings: Settings,
    pre: Preflight,
    planned: PlannedPortfolio,
    parent: str,
    run_id: str,
    strategy: Strategy,
) -> RunRecord:
    """The run of one portfolio of a run with several (its reports and promotion)."""
    plan = planned.plan
    params = json.dumps(strategy.params.model_dump(mode="json"), sort_keys=True)
    record = run_record(settings, pre, run_id, params)
    return replace(
        record,
        strategy=plan.strategy,
        strategy_fingerprint=planned.fingerprint,
        code_fingerprint=planned.code_fingerprint,
        symbols=json.dumps(plan.symbols),
        initial_balance=plan.capital,
        parent_run_id=parent,
        portfolio=plan.id,
    )


def run_record(settings: Settings, pre: Preflight, run_id: str, params_json: str) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        profile=settings.profile,
        kind=str(pre.mode),
        seed=settings.run.seed,
        config_hash=settings.config_hash(),
        config_json=json.dumps(settings.masked_dict(), sort_keys=True),
        strategy=" + ".join(p.plan.strategy for p in pre.portfolios),
        strategy_params=params_json,
        strategy_fingerprint=pre.fingerprint if len(pre.portfolios) == 1 else "portfolios",
        code_fingerprint=(
            pre.portfolios[0].code_fingerprint if len(pre.portfolios) == 1 else "portfolios"
        ),
        code_version=pre.code_version,
        symbols=json.dumps(settings.symbols),
        # what the portfolios hold: their capitals may leave part of
        # account.initial_balance unallocated (a session of one portfolio of 5,000 on a
        # profile of 100,000), as a live account run stores
        initial_balance=sum(p.plan.capital for p in pre.portfolios),
        created_at=int(time.time() * 1000),
        start_ts=None,
        end_ts=None,
        status="running",
        error_lines=0,
        warning_lines=0,
        detail=None,
        pid=os.getpid(),
        host=durable.this_host(),
    )


def not_started(
    store: RunStore, run_id: str, resumed: bool
) -> Callable[[type[BaseException] | None, BaseException | None, object], bool]:
    """On a failure to start: the run's rows say so (`failed`; a resumed run stays
    resumable: `interrupted`), and its store is closed."""

    def undo(kind: type[BaseException] | None, exc: BaseException | None, _tb: object) -> bool:
        if exc is not None:
            with contextlib.suppress(Exception), store.transaction():
                status = "interrupted" if resumed else "failed"
                durable.not_started(store.connection, run_id, status, f"did not start: {exc}")
        with contextlib.suppress(Exception):
            store.close()
        return False

    return undo


def quietly(close: Callable[[], object]) -> None:
    """Cleanup after a failure to start: the reason to report is that failure."""
    with contextlib.suppress(Exception):
        close()


def open_run(
    settings: Settings, pre: Preflight, params_json: str, resume: str | None, hosted: bool
) -> tuple[RunStore, str, RunRecord | None, list[str]]:
    """Open the store (the caller holds its lock): runs left `running` by a dead process
    become `crashed` (a hosted run's process did that when it took the lock: the runs
    still `running` are its own; their ids are returned, for the alerts); then a new run
    is created, or the run to resume is found."""
    store = RunStore(":memory:" if metrics_only(settings) else settings.database_path)
    try:
        crashed = [] if hosted else mark_crashed(store)
        if pre.spec.writes_behind:
            store.write_behind()
        if resume is None:
            run_id = new_run_id(settings.profile)
            store.create_run(run_record(settings, pre, run_id, params_json))
            return store, run_id, None, crashed
        kinds = tuple(str(m) for m, row in MODES.items() if row.resumable)
        if not pre.spec.resumable:
            raise checkpoint.ResumeError(f"--resume continues paper runs ({', '.join(kinds)}),"
                                         f" not {pre.mode} runs")  # fmt: skip
        # the runs this command can continue: of its own kind (a dry run, not a replay)
        run = checkpoint.find_resumable(
            store, settings.profile, (str(pre.mode),), resume, settings.masked_dict()
        )
        fingerprints = {p.plan.id: (p.fingerprint, p.code_fingerprint) for p in pre.portfolios}
        checkpoint.require_same_strategies(store, run, fingerprints)
        return store, run.run_id, run, crashed
    except BaseException:
        store.close()
        raise


def metrics_only(settings: Settings) -> bool:
    """`run.record: metrics`: an optimisation trial keeps nothing but its metrics."""
    return settings.run.record == "metrics"
