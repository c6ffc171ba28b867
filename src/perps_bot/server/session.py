"""One session: a run the server (or a `--http-port` bot) shows and, on the server,
controls, with the subscribers of its stream.

Events reach it from the run's recorders (`Recorder.listeners`: fills, closed trades,
equity rows, state changes) on the trading path, and are handed to every websocket
subscriber's queue at once: nothing polls. Equity rows come once a simulated minute,
thousands a second on a `--dev-fast` run, so they are passed on at most every
`EQUITY_EVERY_S` of wall time per portfolio, and the portfolio snapshot (sent after
fills, state changes and equity rows) at most that often too, the last of a burst
sent when the interval is over (one timer, no polling); fills, trades and state
changes always are. A control (pause, resume, flatten) and the run's start are followed
by a snapshot too: the page shows what they changed at once. A subscriber that does not
keep up loses messages (its queue is bounded), never the run its speed; it is then sent
a new hello (`resync`), so its view is whole again rather than silently short.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from perps_bot.domain import ACCOUNT, OrderIntent, short
from perps_bot.orchestrator.portfolio import Portfolio
from perps_bot.orchestrator.recorder import Recorder
from perps_bot.orchestrator.wiring import Run
from perps_bot.server import views
from perps_bot.server.requests import RequestError
from perps_bot.storage import RunStore

EQUITY_EVERY_S = 0.25
STOPPED = "stopped by the session API"  # the detail of the run of a stopped session
FLATTEN = "flatten (session API)"  # the reason of a flatten's closes
QUEUE_SIZE = 2_000

Message = dict[str, Any]


class Session:
    def __init__(
        self, session_id: str, *, controls: bool, created_at: int, portfolio_ids: list[str]
    ) -> None:
        self.id = session_id
        self.portfolio_ids = portfolio_ids
        self.controls = controls  # pause / resume / flatten / stop allowed
        self.created_at = created_at
        self.status = "starting"
        self.detail: str | None = None
        self.run_id: str | None = None
        self.child_run_ids: list[str] = []
        self.run: Run | None = None
        self.task: asyncio.Task[None] | None = None
        self.stop_requested = False
        #: interrupted by the server's own stop: it goes on at the server's next start
        self.goes_on = False
        #: what the session's view shows of its run once it ended (views.ended_run)
        self.ended: dict[str, Any] = {}
        #: the prompts the API gave the planners, by portfolio id: (text, label)
        self.prompts: dict[str, tuple[str, str]] = {}
        self.subscribers: set[asyncio.Queue[Message]] = set()
        self._lost: set[asyncio.Queue[Message]] = set()  # overflowed since its last hello
        self._sent: dict[str, float] = {}
        self._next_snapshot = 0.0
        self._trailing: asyncio.TimerHandle | None = None

    # -- the run ---------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def attached(self, run: Run) -> AsyncIterator[None]:
        """The runner's `attach`: the session follows `run` while it executes. A session
        stopped while its run was made (the stop's cancel can be lost on the way: a
        call that completed in the same step) stops the run before it trades."""
        if self.stop_requested:
            run.orchestrator.request_stop(STOPPED, interrupt=True)
        self.run, self.run_id = run, run.run_id
        self.child_run_ids = list(run.child_run_ids)
        self.status = "running"
        recorders = self._recorders(run)
        for pid, rec in recorders:
            rec.listeners.append(self._listener(pid))
        self.publish({"type": "status", "data": self.view()})
        self._publish_portfolio()  # a page opened while it was starting has none yet
        try:
            yield
        finally:
            for _, rec in recorders:
                rec.listeners.clear()
            if self._trailing is not None:
                self._trailing.cancel()
                self._trailing = None
            self.run = None

    @staticmethod
    def _recorders(run: Run) -> list[tuple[str, Recorder]]:
        out = [(p.id, p.rec) for p in run.orchestrator.portfolios]
        if run.recorder not in {rec for _, rec in out}:
            out.append((ACCOUNT, run.recorder))
        return out

    def _listener(self, pid: str) -> Callable[[str, dict[str, Any]], None]:
        def listen(kind: str, payload: dict[str, Any]) -> None:
            if kind == "equity":
                now = time.monotonic()
                if now - self._sent.get(pid, 0.0) < EQUITY_EVERY_S:
                    return
                self._sent[pid] = now
                self.publish({"type": kind, "portfolio": pid, "data": payload})
                if pid != ACCOUNT:
                    self._publish_portfolio()
                return
            self.publish({"type": kind, "portfolio": pid, "data": payload})
            if kind != "trade":
                self._publish_portfolio()

        return listen

    def _publish_portfolio(self) -> None:
        if not self.subscribers or self.run is None:
            return
        wait = self._next_snapshot - time.monotonic()
        if wait <= 0:
            self._send_snapshot()
        elif self._trailing is None:
            self._trailing = asyncio.get_running_loop().call_later(wait, self._send_snapshot)

    def _send_snapshot(self) -> None:
        self._trailing = None
        if self.subscribers and self.run is not None:
            self._next_snapshot = time.monotonic() + EQUITY_EVERY_S
            self.publish({"type": "portfolio", "data": views.portfolios(self.run, self)})

    def finished(self, status: str, detail: str | None, *, goes_on: bool = False) -> None:
        """The run ended `status`; `goes_on`: the server stops, and goes on with the
        session at its next start."""
        self.status, self.detail, self.goes_on = status, detail, goes_on
        self.publish({"type": "status", "data": self.view()})

    @property
    def over(self) -> bool:
        """Whether the session has ended for good: its stream has nothing more to say."""
        return self.status not in ("starting", "running") and not self.goes_on

    # -- the stream ------------------------------------------------------------------
    def publish(self, message: Message) -> None:
        for queue in self.subscribers:
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:  # a subscriber behind: this message is lost to it
                self._lost.add(queue)

    def subscribe(self) -> "asyncio.Queue[Message]":
        queue: asyncio.Queue[Message] = asyncio.Queue(QUEUE_SIZE)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: "asyncio.Queue[Message]") -> None:
        self.subscribers.discard(queue)
        self._lost.discard(queue)

    def resync(self, queue: "asyncio.Queue[Message]") -> bool:
        """Whether `queue` lost messages since it was last told; it is emptied then (what
        it holds has gaps), and its subscriber is to send a new hello, read before any
        further message is published."""
        if queue not in self._lost:
            return False
        self._lost.discard(queue)
        while not queue.empty():
            queue.get_nowait()
        return True

    # -- views and controls ----------------------------------------------------------
    def view(self) -> dict[str, Any]:
        return views.session(self)

    def controllable(self) -> Run:
        """The running run, to control; RequestError (403 read-only, 409 not running or
        stopping: a run asked to stop may have sent its last orders already, and a
        control answered then was never carried out)."""
        if not self.controls:
            raise RequestError("this server does not allow control (read-only)", status=403)
        run = self.run
        if run is None:
            raise RequestError(f"session {self.id} is {self.status}, not running", status=409)
        if run.orchestrator.stop_requested:
            raise RequestError(f"session {self.id} is stopping ({run.orchestrator.stop_reason}):"
                               " it takes no more controls", status=409)  # fmt: skip
        return run

    def portfolio(self, pid: str) -> Portfolio:
        """The running portfolio `pid`, or RequestError (404 unknown; `controllable`)."""
        run = self.controllable()
        for p in run.orchestrator.portfolios:
            if p.id == pid:
                return p
        known = ", ".join(p.id for p in run.orchestrator.portfolios)
        raise RequestError(f"session {self.id} has no portfolio {short(pid)!r} (it has: {known})",
                           404)  # fmt: skip

    def control(self, pid: str, action: str) -> dict[str, Any]:
        """pause / resume / flatten portfolio `pid`. A flatten pauses the strategy too: a
        trader who closes a portfolio's positions by hand does not want its strategy to
        open them again at its next signal; `resume` hands control back, and the strategy
        states again the positions it wants (what it signalled while paused was dropped)."""
        p = self.portfolio(pid)
        orders = 0
        assert self.run is not None
        orchestrator = self.run.orchestrator
        if action == "resume":  # the strategy states again what it wants now
            orchestrator.resume(p)
        else:
            orchestrator.pause(p)
            if action == "flatten":
                orders = orchestrator.flatten(p, FLATTEN)
        self.save_soon()
        data = {"portfolio": pid, "action": action, "paused": p.paused, "closing": orders}
        self.publish({"type": "control", "portfolio": pid, "data": data})
        self._publish_portfolio()  # now, not with the next fill or equity row (a minute
        return data  # away on a session on the wall clock)

    def save_soon(self) -> None:
        """After a control: the run is checkpointed with this batch, not seconds later (a
        kill in between lost a control the API answered)."""
        soon = self.run.orchestrator.save_soon if self.run is not None else None
        if soon is not None:
            soon()

    def paused(self) -> list[str]:
        """The ids of the running run's portfolios that are paused."""
        run = self.run
        return [] if run is None else [p.id for p in run.orchestrator.portfolios if p.paused]

    def flattens(self) -> dict[str, int]:
        """How many flattens the running run's portfolios have taken (from its start, or
        on from the session's run before a restart: server.kept_controls)."""
        run = self.run
        return {} if run is None else {p.id: p.flattens for p in run.orchestrator.portfolios}

    def flattened(self) -> dict[str, int]:
        """Of the flattens taken (`flattens`), how many made their closes: all but one
        whose closes still wait among the portfolio's signals for the run's next event
        (server.kept_controls: a live session's restart carries that one out)."""
        run = self.run
        if run is None:
            return {}
        return {p.id: p.flattens - _closing(p) for p in run.orchestrator.portfolios}

    def stop(self) -> None:
        """Stop cleanly: the run ends after its current batch (before it is wired: the
        task is cancelled), stored `interrupted` (it stopped before its end: `report`
        must not call it completed) with the detail `STOPPED`; the session is
        `stopped`, and a server started again does not go on with it (a
        `perps-bot --resume RUN_ID` on the database can)."""
        if not self.controls:
            raise RequestError("this server does not allow control (read-only)", status=403)
        if self.status not in ("starting", "running"):
            raise RequestError(f"session {self.id} is already {self.status}", status=409)
        self.stop_requested = True
        if self.run is not None:
            self.run.orchestrator.request_stop(STOPPED, interrupt=True)
        elif self.task is not None:
            self.task.cancel()


def _closing(portfolio: Portfolio) -> int:
    """1 when a flatten's closes are still to be made (`flattening`: made at the run's
    next event), wait among the portfolio's signals, or are to be made again until the
    portfolio is flat (`closing_out`: a close the risk gate denied or the exchange
    refused), else 0."""
    if portfolio.flattening is not None or portfolio.closing_out is not None:
        return 1
    return int(any(type(s) is OrderIntent and s.reduce_only and s.reason == FLATTEN
                   for s in portfolio.pending))  # fmt: skip


class Sessions:
    """The sessions a server shows, read through `store`."""

    def __init__(self, store: RunStore, *, controls: bool) -> None:
        self.store = store
        self.controls = controls
        self.sessions: dict[str, Session] = {}

    def get(self, session_id: str) -> Session:
        found = self.sessions.get(session_id)
        if found is None:
            raise RequestError(f"no session {short(session_id)!r}", status=404)
        return found

    def reader(self, s: Session) -> RunStore:
        """The store with every row of `s` written so far (a running run's buffered rows
        are flushed first: the API reads what the run did up to now)."""
        if s.run is not None:
            s.run.store.flush()
        return self.store

    async def start(self, body: object) -> Session:
        raise RequestError("this server shows one run: it does not start sessions", 403)

    def controlled(self, s: Session) -> None:
        """After a control of `s` (pause, resume, flatten): nothing to keep here."""

    def stopping(self, s: Session) -> None:
        """After the stop of `s`, before the API answers: nothing to keep here."""
