"""Paper runs that lose nothing and resume where they stopped (SPEC 9).

Between batches, once `CHECKPOINT_EVERY_S` of WALL time passed since the last time,
the run's buffered rows (fills, orders, denials, funding, equity) are written and a
checkpoint of every stateful stage is stored in the same transaction: the ledger's
exact books, the paper venue's open orders and fill generator, the risk gate, the
strategy's `state()`, the feed's generators and position, the loop's own clocks, bars
and excursions, and the run's counters. So a kill loses at most that much wall time,
and a checkpoint always matches the rows stored before it. A run on the wall clock (a
dry run) also takes one at the end of every batch with fills, which are stored with it
and not before (Orchestrator.store_fills_with): its live market cannot be replayed
after a resume, so no fill may be stored after its last checkpoint. Backtests take no
checkpoints (nothing to resume: they rerun in seconds) and pay nothing for this.

`--resume` deletes the rows written after the checkpoint, restores every stage and
goes on under the same run id; the same seed then produces the same events, so a
resumed `--dev-fast` run ends with exactly the fills of an uninterrupted one. The
journal lines the stopped run wrote after its checkpoint (the checkpoint keeps the
file's end) are not written again by their replay: events.jsonl counts each event once.

The state is pickled: it holds exact Decimals, numpy generator states and the
venue's order objects, which pickle keeps bit for bit. A checkpoint is read back only
by the code version that wrote it (`--resume` refuses another one in one line).
"""

import logging
import math
import pickle
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from perps_bot.config.settings import trading_settings
from perps_bot.domain import PerpsBotError, short
from perps_bot.orchestrator.engine import Orchestrator
from perps_bot.orchestrator.recorder import Recorder
from perps_bot.risk.account_gate import AccountGate
from perps_bot.storage import RunRecord, RunStore, StoreError
from perps_bot.storage import durable as stored

log = logging.getLogger("perps_bot.run")

CHECKPOINT_EVERY_S = 2.0
#: bumped when the layout of the pickled state changes
FORMAT = 1


class ResumeError(PerpsBotError):
    """A run that cannot be resumed; one-line message (CLI exit 2)."""


@runtime_checkable
class Stateful(Protocol):
    """A feed or venue that a checkpoint can keep (random walk, paper venue)."""

    def state(self) -> Any: ...

    def restore_state(self, state: Any) -> None: ...


def capture(orchestrator: Orchestrator) -> dict[str, Any]:
    """Every stage's state between two batches (live objects: pickle at once)."""
    feed, venue = orchestrator.feed, orchestrator.venue
    return {
        "format": FORMAT,
        "venue": venue.state() if isinstance(venue, Stateful) else None,
        "feed": feed.state() if isinstance(feed, Stateful) else None,
        "loop": orchestrator.loop_state(),
        "recorder": _counters(orchestrator.rec),
        "journal": orchestrator.rec.journal.offset(),
        "account": gate.activity() if (gate := _account_gate(orchestrator)) else None,
        "portfolios": {
            p.id: {
                "ledger": p.ledger.state(),
                "risk": (p.risk.export_state(), p.risk.activity()),
                "strategy": p.strategy.state(),
                "recorder": _counters(p.rec),
                "paused": p.paused,
                "restate": p.restate,
                "flattens": p.flattens,
                "plot": p.plot.state(),
            }
            for p in orchestrator.portfolios
        },
    }


def restore(orchestrator: Orchestrator, state: dict[str, Any]) -> None:
    """Put every stage back where `capture` found it."""
    if state.get("format") != FORMAT:
        raise ResumeError(f"checkpoint format {state.get('format')} is not {FORMAT}")
    for p in orchestrator.portfolios:
        saved = state["portfolios"][p.id]
        p.ledger.restore_state(saved["ledger"])
        risk_state, activity = saved["risk"]
        p.risk.import_state(risk_state, same_account=True)
        p.risk.restore_activity(activity)
        p.strategy.restore(saved["strategy"])
        _restore_counters(p.rec, saved["recorder"])
        p.paused = bool(saved.get("paused", False))
        p.restate = bool(saved.get("restate", False))
        p.flattens = int(saved.get("flattens", 0))
        if "plot" in saved:  # older: the chart begins at the checkpoint
            p.plot.restore_state(saved["plot"])
    for part, key in ((orchestrator.venue, "venue"), (orchestrator.feed, "feed")):
        if state[key] is not None and isinstance(part, Stateful):
            part.restore_state(state[key])
    orchestrator.restore_loop_state(state["loop"])
    _restore_counters(orchestrator.rec, state["recorder"])
    gate = _account_gate(orchestrator)
    if gate is not None and state.get("account") is not None:
        gate.restore_activity(state["account"])


def _account_gate(orchestrator: Orchestrator) -> AccountGate | None:
    """The account's caps the portfolios share (one gate, or none)."""
    return orchestrator.portfolios[0].flow.account if orchestrator.portfolios else None


def _counters(rec: Recorder) -> tuple[Any, ...]:
    """The recorder's counters and the round trips it has open (a trade open at the
    checkpoint that the resumed run closes gets its TRADE CLOSED line and alert)."""
    return rec.fills, rec.liquidations, dict(rec.denials), rec.open_trades()


def _restore_counters(rec: Recorder, counters: tuple[Any, ...]) -> None:
    rec.fills, rec.liquidations, denials, *trades = counters  # older: no round trips
    rec.denials = Counter(denials)
    if trades:
        rec.restore_open_trades(trades[0])


class PeriodicFlush:
    """The orchestrator's `after_batch` for live runs, which take no checkpoint (they
    reconcile with the exchange instead): every `every_s` seconds of wall time (checked
    once per batch: one clock read) the buffered rows and journal lines are written.
    Fills are written at once anyway; without this a quiet live run's denials and equity
    rows waited for its next fill, unseen by `report` and the session API, and were lost
    with the process."""

    def __init__(
        self,
        orchestrator: Orchestrator,
        *,
        every_s: float = CHECKPOINT_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.orchestrator = orchestrator
        self.every_s = every_s
        self._clock = clock
        self._last: float = clock()
        #: stored with every flush too (a live run's trading state, if it moved)
        self.also: list[Callable[[], None]] = []

    def __call__(self) -> None:
        now = self._clock()
        if now - self._last >= self.every_s:
            self._last = now
            self.save()

    def soon(self) -> None:
        """Save at the end of this batch, whatever time passed (a trading state change:
        a paper run killed after its halt then resumes after it, not before)."""
        self._last = -math.inf

    def save_if_soon(self) -> None:
        """Save now if `soon` asked for it since the last time (a run interrupted before
        its batch ended: a session control the API answered is saved with it)."""
        if self._last == -math.inf:
            self._last = self._clock()
            self.save()

    def save(self) -> None:
        self.orchestrator.rec.flush()
        for save in self.also:
            save()


class Checkpointer(PeriodicFlush):
    """The orchestrator's `after_batch` for paper runs: a flush and a checkpoint every
    `every_s` seconds of wall time."""

    def __init__(
        self,
        orchestrator: Orchestrator,
        code_version: str,
        *,
        every_s: float = CHECKPOINT_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        restored: dict[str, Any] | None = None,
    ) -> None:
        """`restored`: the kept parts' states of the checkpoint a run resumed from."""
        super().__init__(orchestrator, every_s=every_s, clock=clock)
        self.code_version = code_version
        self.saved = 0
        self.kept: dict[str, Stateful] = {}
        self._restored = restored or {}

    def keep(self, name: str, part: Stateful) -> None:
        """Checkpoint `part` too (one outside the loop: the alerts' day), restored now
        from the checkpoint the run resumed from."""
        self.kept[name] = part
        if name in self._restored:
            part.restore_state(self._restored[name])

    def save(self) -> None:
        orchestrator = self.orchestrator
        if orchestrator.last_ts is None:
            return  # nothing happened yet: a resume starts over
        rec = orchestrator.rec
        store, ts = rec.store, orchestrator.last_ts or 0
        state = capture(orchestrator)
        state["kept"] = {name: part.state() for name, part in self.kept.items()}
        blob = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        runs = _run_ids(orchestrator)

        def write(db: Any) -> None:
            # the state is the account run's; each portfolio's run keeps its own marks
            for run_id in runs:
                marks = stored.table_marks(db, run_id, store.next_equity_block(run_id))
                stored.write_checkpoint(
                    db, run_id, ts=ts, code_version=self.code_version, marks=marks,
                    state=blob if run_id == rec.run_id else b"",
                )  # fmt: skip

        store.flush_with(write)
        rec.journal.flush()
        rec.flush_log()
        self.saved += 1


def _run_ids(orchestrator: Orchestrator) -> list[str]:
    """The run ids whose rows a checkpoint covers: the run's, and each portfolio's run of
    a run with several (the first is the one holding the state)."""
    ids = [orchestrator.rec.run_id]
    ids.extend(p.rec.run_id for p in orchestrator.portfolios if p.rec.run_id not in ids)
    return ids


def _replays(orchestrator: Orchestrator, offset: int) -> None:
    """The resumed run replays what the stopped one did after its checkpoint (`offset`:
    the journal file's end then): it does not journal those events again, and its run
    log says `(replayed)` on their lines."""
    until = orchestrator.rec.journal.skip_written(offset, _run_ids(orchestrator))
    if until is not None:
        orchestrator.rec.replayed_until = until
        for p in orchestrator.portfolios:
            p.rec.replayed_until = until


def find_resumable(
    store: RunStore, profile: str, kinds: tuple[str, ...], wanted: str, config: dict[str, Any]
) -> RunRecord:
    """The run `--resume [RUN_ID]` continues ('latest': the last of the profile that did
    not end; for a replay, the last replay of the same capture's run), checked: a paper
    kind, of this profile, not ended, started with the same trading settings (`config`:
    the masked settings of this command)."""
    given = None if wanted == "latest" else wanted
    replay_of = config.get("run", {}).get("replay_of")  # a replay: of this capture's run
    found = stored.resumable_run(store.connection, profile, kinds, given, replay_of)
    if found is None:
        what = f"no run {given!r}" if given else f"no crashed or interrupted {profile} run"
        what += f" replaying {replay_of}" if replay_of and not given else ""
        raise ResumeError(f"cannot resume: {what} in {store.path}")
    run = store.run(found[0])
    if run.parent_run_id is not None:
        raise ResumeError(f"run {run.run_id} is portfolio {run.portfolio} of run"
                          f" {run.parent_run_id}: resume that run")  # fmt: skip
    if run.kind not in kinds:
        raise ResumeError(f"cannot resume run {run.run_id}: a {run.kind} run (resumable: "
                          f"{', '.join(kinds)})")  # fmt: skip
    if run.profile != profile:  # its rows, trading state and promotion are that profile's
        raise ResumeError(f"cannot resume run {run.run_id}: it is a run of profile"
                          f" {run.profile}, not {profile}")  # fmt: skip
    if run.status not in stored.RESUMABLE_STATUSES:
        raise ResumeError(f"cannot resume run {run.run_id}: it is {run.status}")
    settings = stored.json_object(
        store.connection, run.config_json, f"the config of run {run.run_id}"
    )
    stored_config = _trading_config(settings)
    config = _trading_config(config)
    if "llm" not in stored_config:  # a run from before the llm: section
        config.pop("llm", None)
    differs = sorted(
        f"{section}.{key}"
        for section in sorted(set(stored_config) | set(config))
        for key in sorted(set(stored_config.get(section, {})) | set(config.get(section, {})))
        if stored_config.get(section, {}).get(key) != config.get(section, {}).get(key)
    )
    if differs:
        raise ResumeError(
            f"cannot resume run {run.run_id}: it was started with another {differs[0]}"
            " (give the same profile, seed, duration, strategy and params)"
        )
    return run


def require_same_strategies(
    store: RunStore, run: RunRecord, fingerprints: dict[str, tuple[str, str]]
) -> None:
    """ResumeError when a strategy's code is not the code the run started with
    (`fingerprints`, by portfolio id: its fingerprint and its code fingerprint, the
    first without what it trades on beyond its code). Resumed on edited code, the run
    went on under the fingerprint of the code it started with: promote then promoted
    that code for trades the edited code made (the session server resumes its sessions
    the same way after a restart). A plan file edited while the run is stopped is no
    other code (it is edited while the run goes on too); a run from before schema 9
    kept only the fingerprint."""
    children = store.children(run.run_id)
    started = {r.portfolio or "": r for r in children} or {"": run}
    if not children:
        fingerprints = {"": next(iter(fingerprints.values()))} if len(fingerprints) == 1 else {}
    for portfolio, record in sorted(started.items()):
        code = record.code_fingerprint is not None
        fingerprint = record.code_fingerprint or record.strategy_fingerprint
        now = fingerprints.get(portfolio, ("", ""))[1 if code else 0]
        if now != fingerprint:
            which = f" (portfolio {portfolio})" if portfolio else ""
            covers = "" if code else ", a plan strategy's plan file and an llm_planner's prompt"
            raise ResumeError(
                f"cannot resume run {run.run_id}: its strategy{which} is not the code it"
                f" started with (fingerprint {fingerprint}, now {now or 'none'}; it covers"
                f" the code, params, bar size{covers}): start a new run"
            )


def _trading_config(config: dict[str, Any]) -> dict[str, Any]:
    """The sections of a masked config, less the settings a resumed run may change."""
    out = {k: v for k, v in trading_settings(config).items() if isinstance(v, dict)}
    out.setdefault("run", {})
    return out


def _unpickled(run_id: str, blob: bytes) -> dict[str, Any]:
    """The state a checkpoint pickled (our own rows). SQLite keeps no checksum of a row:
    a damaged byte in the blob makes the unpickler fail with nearly any exception, so
    every one of them is the same single line here."""
    try:
        state = pickle.loads(blob)
    except Exception as exc:
        state = exc
    if not isinstance(state, dict):
        why = f"{type(state).__name__}: {state}" if isinstance(state, Exception) else "no state"
        raise ResumeError(
            f"cannot resume run {run_id}: its checkpoint is damaged ({short(why, 80)}); start a"
            " new run instead"
        )
    return state


def resume(
    orchestrator: Orchestrator, store: RunStore, run: RunRecord, code_version: str
) -> tuple[str, dict[str, Any]]:
    """Restore `orchestrator` from the run's checkpoint (none: from the start), delete
    the rows written after it and mark the run running again; return a description and
    the states of the parts a `Checkpointer` keeps."""
    try:
        checkpoint = stored.read_checkpoint(store.connection, run.run_id)
    except StoreError as exc:
        raise ResumeError(f"cannot resume run {run.run_id}: {exc}") from exc
    if checkpoint is not None and checkpoint.code_version != code_version:
        raise ResumeError(
            f"cannot resume run {run.run_id}: its checkpoint was written by perps-bot "
            f"{checkpoint.code_version}, this is {code_version}"
        )
    state = _unpickled(run.run_id, checkpoint.state) if checkpoint is not None else {}
    if checkpoint is not None:
        restore(orchestrator, state)
    open_orders = list(orchestrator.venue.open_orders())
    where = "its start" if checkpoint is None else f"its checkpoint at ts {checkpoint.ts}"
    where += f" after it {run.status}" + (f" ({run.detail})" if run.detail else "")
    db = store.connection
    with store.transaction():
        for p in orchestrator.portfolios:
            run_id = p.rec.run_id
            mine = [o for o in open_orders if o.portfolio == p.id]
            marks = checkpoint if run_id == run.run_id else stored.read_checkpoint(db, run_id)
            if checkpoint is None:
                marks = None  # no checkpoint of the account: every portfolio starts over
            stored.rewind(db, run_id, marks, mine)
            stored.continue_run(db, run_id, f"resumed from {where}")
        if run.run_id not in {p.rec.run_id for p in orchestrator.portfolios}:
            stored.rewind(db, run.run_id, checkpoint, [])
            stored.continue_run(db, run.run_id, f"resumed from {where}")
    for run_id in _run_ids(orchestrator):
        store.forget_cached(run_id)
    offset = state.get("journal") if checkpoint is not None else 0  # None: an older one
    if offset is not None:
        _replays(orchestrator, offset)
    ts = checkpoint.ts if checkpoint is not None else 0
    for p in orchestrator.portfolios:
        for symbol in p.ledger.symbols():
            size, entry = p.ledger.position_size(symbol), p.ledger.entry_price(symbol)
            p.rec.position(symbol, size, entry, ts)
    log.warning("run %s resumed from %s", run.run_id, where)
    return where, dict(state.get("kept", {}))
