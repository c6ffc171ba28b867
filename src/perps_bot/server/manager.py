"""The sessions a server shows, and on `perps-bot serve` the ones it runs (SPEC 11).

Each session is its own run (its portfolios child runs) executed by the one code path
(`run_bot`, hosted: the server holds the database lock and the log) as an asyncio task
of the server's process. The `sessions` table ties each session to its run; when the
server starts it takes the lock, marks the runs a dead process left `running` as
crashed, and goes on with every session that was running: from its run's last
checkpoint (the resume of SPEC 9), or from the start when it had no run yet. A server
that is stopped (Ctrl-C, SIGTERM) interrupts its runs at a checkpoint and leaves their
sessions `running`, so the next start goes on with them too.

A live session trades the profile's account: its run is kept in the profile's own
database (server.requests.session_settings), whose lock the server holds while the
session runs, with the lock of the exchange account itself (storage.account_lock), so a
CLI bot of the account and a second live session of it are refused until it ends. A
live session that goes on after a restart starts a new run, as a CLI bot does: live
runs are not resumed from checkpoints, they reconcile with the exchange.
"""

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from perps_bot.monitoring.alerts import Alerts

from perps_bot.config import AlertsConfig, Settings, load_settings
from perps_bot.domain import PerpsBotError, short
from perps_bot.orchestrator.account_hold import hold_account
from perps_bot.orchestrator.runner import Interrupted, run_bot
from perps_bot.orchestrator.watchers import alert_crashed
from perps_bot.orchestrator.wiring import Run, mark_crashed
from perps_bot.server import views
from perps_bot.server.kept_controls import KeptControls, controls_kept
from perps_bot.server.requests import (
    RequestError,
    StartRequest,
    parse_start,
    session_settings,
    stored_request,
)
from perps_bot.server.session import Session, Sessions
from perps_bot.storage import RunRecord, RunStore, StoreError
from perps_bot.storage import sessions as table
from perps_bot.storage.account_lock import AccountBusy
from perps_bot.storage.durable import RESUMABLE_STATUSES
from perps_bot.storage.lock import DatabaseBusy, DatabaseLock, FileLock

log = logging.getLogger("perps_bot.server")
#: why the runs of a server that stops end `interrupted` (they go on at its next start)
SERVER_STOPPED = "the server stopped: it goes on at the next start"
#: how long a server that stops waits for its runs to end at a checkpoint
CLOSE_WAIT_S = 60.0


class SessionManager(Sessions):
    """The sessions of `perps-bot serve` in database `database` (see the module doc)."""

    def __init__(
        self, database: Path, *, allow_live: bool = False, alerts: AlertsConfig | None = None
    ) -> None:
        self.database = database
        self.allow_live = allow_live
        self._alerts = alerts  # serve's: the run_end of the runs its start finds crashed
        self._crash_alerts: list[Alerts] = []  # on their way; closed with the server
        self._lock = DatabaseLock(database).acquire()
        try:
            store = RunStore(database)
        except BaseException:
            self._lock.release()
            raise
        super().__init__(store, controls=True)
        self._closing = False
        self._account_locks: dict[str, list[FileLock]] = {}  # live sessions running
        self._databases: dict[str, Path] = {}  # a live session's database (not ours)
        self._readers: dict[Path, RunStore] = {}
        self._ended_databases: dict[tuple[str, bool, bool], Path | None] = {}
        self._kept: dict[str, KeptControls] = {}  # for the run a session goes on with

    def reader(self, s: Session) -> RunStore:
        path = self._databases.get(s.id)
        if path is None:
            return super().reader(s)
        if s.run is not None:
            s.run.store.flush()
        if path not in self._readers:
            self._readers[path] = RunStore(path, read_only=True)
        return self._readers[path]

    def _take_account(self, s: Session, settings: Settings) -> None:
        """A live session's hold of the profile's account (see the module doc): the lock
        of the exchange account, and of the profile's database, whose runs a dead process
        left `running` are then marked crashed; RequestError (409) while another bot (a
        CLI bot, another live session) trades the account."""
        refused = f"profile {short(settings.profile)!r}"
        try:
            account = hold_account(settings)  # also refuses a halt stored in another database
        except AccountBusy as exc:
            raise RequestError(f"{refused}: {exc}", 409) from None
        if account is None:
            return
        locks: list[FileLock] = [account]
        try:
            path = self._account_database(settings)
            if path is not None:
                locks.append(DatabaseLock(path).acquire())
                with RunStore(path) as store:
                    self._alert_crashed(mark_crashed(store), settings.alerts)
        except BaseException as exc:
            for lock in locks:
                lock.release()
            if isinstance(exc, DatabaseBusy):
                raise RequestError(f"{refused}: {exc}", 409) from None
            raise
        self._account_locks[s.id] = locks
        if path is not None:
            self._databases[s.id] = path

    def controlled(self, s: Session) -> None:
        """Keep which portfolios the API paused and how many flattens it took, before it
        answers: a session that goes on after a restart as a new run (a live one) has no
        checkpoint to hold the pauses, and a portfolio the trader paused or flattened
        traded again; a paper one goes on from its last checkpoint, which a flatten
        taken up in the batch the process was killed in is not in."""
        table.set_controls(self.store.connection, s.id, s.paused(), s.flattens(), s.prompts,
                           s.flattened())  # fmt: skip

    def stopping(self, s: Session) -> None:
        """Keep the stop before the API answers: the session ends `stopped` whatever
        happens to its run from here. Stored only once the run had closed, a kill in
        between left it `running`, and the server started again went on trading it."""
        table.end_session(self.store.connection, s.id, "stopped", None)

    def _release_account(self, s: Session) -> None:
        for lock in self._account_locks.pop(s.id, []):
            lock.release()

    async def open(self) -> None:
        """Mark what a dead server left running as crashed (alerted); go on with it."""
        self._alert_crashed(mark_crashed(self.store), self._alerts)
        for record in table.load_sessions(self.store.connection):
            try:
                request = stored_request(record.request)
            except RequestError as exc:
                self._unreadable(record, str(exc))
                continue
            s = self._session(record.session_id, record.created_at, request)
            s.run_id, s.status, s.detail = record.run_id, record.status, record.detail
            self._kept[s.id] = KeptControls(set(record.paused), dict(record.flattens),
                                            dict(record.flattened))  # fmt: skip
            s.prompts = dict(record.prompts)
            if record.status not in table.UNFINISHED:
                self._remember_database(s, request)
                if s.run_id is not None:
                    s.ended = views.ended_run(self.reader(s), s.run_id)
                continue
            try:
                if record.damaged is not None:  # its controls are not known
                    raise RequestError(record.damaged)
                settings = session_settings(request, self.database, allow_live=self.allow_live)
                self._take_account(s, settings)
            except RequestError as exc:
                self._remember_database(s, request)
                self._end(s, "failed", f"cannot go on: {exc}")
                continue
            resume = None
            if record.run_id is not None:
                run = self._stored_run(s, record.run_id)
                if run is None or run.status not in RESUMABLE_STATUSES:  # ended before the kill
                    self._release_account(s)
                    gone = f"cannot go on: its run {record.run_id} is not in its database"
                    self._end(s, *((run.status, run.detail) if run else ("failed", gone)))
                    continue
                resume = None if settings.is_live else record.run_id
            log.info("session %s: going on with run %s", s.id, resume or "(new)")
            s.task = asyncio.create_task(self._execute(s, settings, resume))

    def _alert_crashed(self, crashed: list[str], config: AlertsConfig | None) -> None:
        """The run_end alerts of runs found crashed (a live session's profile database:
        its profile's alerts), sent off the loop; said in the log when none can be."""
        sent = alert_crashed(config or AlertsConfig(), crashed, name="perps-bot serve",
                             found_by="the session server")  # fmt: skip
        if sent is not None:
            self._crash_alerts.append(sent)

    def _stored_run(self, s: Session, run_id: str) -> RunRecord | None:
        """The run of `s` as stored (a live session of a server that kept it in its own
        database: there); None when neither has it (the database was replaced, the
        profile names another, the session was edited by hand)."""
        for store in (self.reader(s), self.store):
            with contextlib.suppress(StoreError):
                return store.run(run_id)
        return None

    def _unreadable(self, record: table.SessionRecord, why: str) -> None:
        """A session whose stored request this version cannot read (another version's,
        or edited by hand): shown as it stands, one not ended ends `failed` saying why."""
        s = Session(record.session_id, controls=True, created_at=record.created_at,
                    portfolio_ids=[])  # fmt: skip
        self.sessions[s.id] = s
        s.run_id, s.status, s.detail = record.run_id, record.status, record.detail
        if record.status not in table.UNFINISHED:
            s.ended = {} if s.run_id is None else views.ended_run(self.store, s.run_id)
            return
        detail = f"cannot go on: its stored request: {why}"
        log.warning("session %s %s", s.id, detail)
        self._end(s, "failed", detail)

    def _remember_database(self, s: Session, request: StartRequest) -> None:
        """Where an ended session's run is kept, to show it (a live session's: the
        profile's database, wherever the profile says it is now). The profile is read
        once per profile and mode, not once per session, at the server's start."""
        key = (request.profile, request.dry_run, request.dev_fast)
        if key not in self._ended_databases:
            path = None
            with contextlib.suppress(PerpsBotError):
                run = {"dry_run": request.dry_run, "dev_fast": request.dev_fast}
                path = self._account_database(load_settings(request.profile, {"run": run}))
            self._ended_databases[key] = path
        path = self._ended_databases[key]
        if path is not None and path.exists() and path not in self._readers:
            try:  # one that cannot be read is not shown (the server starts all the same)
                self._readers[path] = RunStore(path, read_only=True)
            except StoreError as exc:
                log.warning("session %s: its run is not shown: %s", s.id, exc)
        if path in self._readers:
            self._databases[s.id] = path

    def _account_database(self, settings: Settings) -> Path | None:
        """The database of a live session's run when it is not the server's."""
        path = settings.database_path
        return path if settings.is_live and path.resolve() != self.database.resolve() else None

    async def start(self, body: object) -> Session:
        request = parse_start(body)
        settings = session_settings(request, self.database, allow_live=self.allow_live)
        session_id = secrets.token_hex(4)
        s = self._session(session_id, 0, request)
        try:
            self._take_account(s, settings)
            record = table.add_session(self.store.connection, session_id,
                                       json.dumps(request.as_json()))  # fmt: skip
        except BaseException:
            self._release_account(s)
            del self.sessions[session_id]
            raise
        s.created_at = record.created_at
        s.task = asyncio.create_task(self._execute(s, settings, None))
        return s

    def _session(self, session_id: str, created_at: int, request: StartRequest) -> Session:
        pids = [str(p["id"]) for p in request.portfolios]
        s = Session(session_id, controls=True, created_at=created_at, portfolio_ids=pids)
        self.sessions[session_id] = s
        return s

    async def _execute(self, s: Session, settings: Settings, resume: str | None) -> None:
        @contextlib.asynccontextmanager
        async def attach(run: Run) -> AsyncIterator[None]:
            if self._closing:  # the server's cancel was lost on the way (as in
                # Session.attached): the run does not trade, it goes on at the next start
                run.orchestrator.request_stop(SERVER_STOPPED, interrupt=True)
            table.set_session_run(self.store.connection, s.id, run.run_id)
            kept = self._kept.pop(s.id, KeptControls(None, {}, {}))
            controls_kept(s, run, kept, self.store.connection, resumed=resume is not None,
                          live=settings.is_live)  # fmt: skip
            async with s.attached(run):
                yield
                if settings.is_live:  # its last closes went out as the run ended
                    table.set_flattened(self.store.connection, s.id, s.flattened())

        status, detail = "failed", None
        try:
            result = await run_bot(settings, progress=False, console=Console(quiet=True),
                                   resume=resume, attach=attach, hosted=True)  # fmt: skip
            status = "stopped" if s.stop_requested else result.status
            detail = result.detail  # why a failed run stopped
        except (asyncio.CancelledError, Interrupted):
            status = "stopped" if s.stop_requested else "interrupted"
        except PerpsBotError as exc:
            detail = str(exc)
        except Exception as exc:
            log.exception("session %s failed", s.id)
            detail = f"{type(exc).__name__}: {exc}"
        finally:
            self._release_account(s)
        if self._closing and status == "interrupted":
            s.finished("interrupted", SERVER_STOPPED, goes_on=True)
            return  # stays `running` in the table
        self._end(s, status, detail)

    def _end(self, s: Session, status: str, detail: str | None) -> None:
        table.end_session(self.store.connection, s.id, status, detail)
        if s.run_id is not None:
            s.ended = views.ended_run(self.reader(s), s.run_id)
        s.finished(status, detail)

    async def close(self) -> None:
        """Interrupt every running session at a checkpoint (they go on at the next start),
        then release the database and the accounts: only once every run has ended (a
        run still executing may still send orders and write: released before, a CLI bot
        or a second server trades the account alongside it). A run not ended within
        `CLOSE_WAIT_S` is cancelled, and waited for still (a second Ctrl-C ends the
        process: its locks go with it)."""
        self._closing = True
        tasks = [s.task for s in self.sessions.values() if s.task is not None and not s.task.done()]
        for s in self.sessions.values():
            if s.stop_requested:  # stopping already: by the API, and it does not go on
                continue
            if s.run is not None:
                s.run.orchestrator.request_stop(SERVER_STOPPED, interrupt=True)  # its run_end
                # and its run's detail say so (not a bare `interrupted`: it is not over)
            elif s.task is not None:
                s.task.cancel()
        await _until_ended(tasks)
        for alerts in self._crash_alerts:  # their last chance, off the loop
            await asyncio.to_thread(alerts.close)
        for s in self.sessions.values():
            self._release_account(s)
        for reader in self._readers.values():
            reader.close()
        self.store.close()
        self._lock.release()


async def _until_ended(tasks: "list[asyncio.Task[None]]") -> None:
    """Wait for the session tasks `tasks` to end: `CLOSE_WAIT_S`, then cancel those left
    and wait for them as long as they take (saying so every `CLOSE_WAIT_S`)."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=CLOSE_WAIT_S)
    for task in pending:
        task.cancel()
    while pending:
        log.warning("%d session run(s) not ended %.0f s after the stop: cancelled, the"
                    " server waits for them before it releases the accounts",
                    len(pending), CLOSE_WAIT_S)  # fmt: skip
        _, pending = await asyncio.wait(pending, timeout=CLOSE_WAIT_S or None)
