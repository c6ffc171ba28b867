"""The account's trading state across runs (SPEC 9): a halt survives any restart, by
kill -9 or clean stop, and only `perps-bot resume-trading` lifts it.

The risk gate exports its state (risk.RiskState); the run store keeps it per database
(storage.durable). A run imports it before it trades: the halt always, the equity
peak, the day's starting equity and the REDUCING causes only when the run trades the
same account as the one that stored them (a live account, whose balance the ledger
of its one portfolio adopts from the exchange before the first equity reaches the gate;
a resumed paper run). A fresh paper account (a new dev run), and each of several
portfolios of a live run (its books start at its capital), measure their own drawdown.
"""

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from perps_bot.domain import DEFAULT_PORTFOLIO, TradingState, short
from perps_bot.monitoring import Journal
from perps_bot.risk import RiskGate, RiskState
from perps_bot.risk.account_gate import AccountGate
from perps_bot.risk.rate_window import RATE_WINDOW_MS
from perps_bot.storage import RunStore, damaged
from perps_bot.storage import durable as stored

log = logging.getLogger("perps_bot.run")


class TradingStateKeeper:
    """Imports the stored trading state into the gate and stores it back on changes."""

    def __init__(
        self,
        store: RunStore,
        risk: RiskGate,
        profile: str,
        run_id: str,
        portfolio: str = DEFAULT_PORTFOLIO,
    ) -> None:
        """One keeper per portfolio: each has its own risk state (SPEC 10)."""
        self.store = store
        self.risk = risk
        self.profile = profile
        self.run_id = run_id
        self.portfolio = portfolio
        #: the line that says the run starts halted or reducing (None: it starts ACTIVE)
        self.restored: str | None = None
        #: the state this resumed run stored after its checkpoint (its replay reaches it
        #: again: announced already), None when it stored none
        self.replayed: str | None = None
        #: (the halt's cause, the lift's detail): a halt of this resumed run that
        #: resume-trading lifted after its checkpoint, lifted again when replayed
        self.lifted: tuple[str, str] | None = None
        #: the gate's state as last stored by this keeper, its last equity left out
        self._saved: RiskState | None = None

    def restore(
        self, *, same_account: bool, resumed: bool, journal: Journal, ts: int, replays: bool = True
    ) -> None:
        """Import the stored state before the run trades (after a checkpoint restored
        the gate of a resumed run: then only the halt is taken, or its lifting).
        `replays`: a resumed run sees again the very events that followed its checkpoint
        (a seeded feed), so it makes its own later changes again; a dry run sees today's
        market instead, where its halt may not come again: that one is taken too."""
        saved = stored_state(self.store, self.portfolio)
        own = resumed and saved is not None and saved.run_id == self.run_id
        if saved is None or (own and replays):
            # this run's own later changes: the replay from the checkpoint makes them
            # (the stored state is one of them unless the checkpoint holds it already)
            later = own and saved is not None and saved.state != str(self.risk.state)
            self.replayed = saved.state if later and saved is not None else None
            return
        state = _risk_state(self.store, saved)
        risk = self.risk
        if resumed and replays and saved.run_id is None and saved.portfolio == self.portfolio:
            halt = stored.lifted_halt(self.store.connection, saved, self.run_id)
            if halt is not None:  # the replay halts again: announced, and lifted since
                self.lifted, self.replayed = (halt, saved.detail), str(TradingState.HALTED)
        if not resumed:
            ours = saved.portfolio == self.portfolio  # else the account's halt alone
            risk.import_state(state, same_account=same_account and ours)
        elif state.halted:
            risk.import_state(state, same_account=False)  # the halt, not the checkpoint's peak
        elif risk.state is TradingState.HALTED or (
            saved.run_id is None and risk.state is not TradingState.ACTIVE
        ):
            risk.resume()  # lifted by resume-trading after the checkpoint (also a drawdown
            # REDUCING state: the peak restarts at the last equity, as resume-trading says)
        if risk.state is not TradingState.ACTIVE:
            whose = "" if saved.portfolio == self.portfolio else f" of portfolio {saved.portfolio}"
            source = stored.state_origin(self.store.connection, saved) or "resume-trading"
            detail = f"restored from run {source}{whose}: {risk.state_detail}"
            journal.write("state_change", ts, {"state": str(risk.state), "detail": detail})
            self.restored = (f"RISK STATE {risk.state}{self._of()} ({detail});"
                             " perps-bot resume-trading lifts a halt")  # fmt: skip
            log.warning("%s", self.restored)

    def _of(self) -> str:
        return "" if self.portfolio == DEFAULT_PORTFOLIO else f" of portfolio {self.portfolio}"

    def save_if_moved(self) -> None:
        """Store the gate's state when more than its last equity moved since it was last
        stored (a new peak, a new day's starting equity): a live run calls it with its
        periodic flush, so a kill loses no more than that interval of them."""
        if replace(self.risk.export_state(), last_equity=None) != self._saved:
            self.save()

    def save(self) -> None:
        """Store the gate's state now (every state change and the end of the run)."""
        risk = self.risk.export_state()
        self._saved = replace(risk, last_equity=None)
        with self.store.transaction():
            stored.save_trading_state(
                self.store.connection, profile=self.profile, state=risk.state,
                detail=risk.detail, risk=risk.to_json(), run_id=self.run_id, source="run",
                portfolio=self.portfolio,
            )  # fmt: skip


def state_key(portfolio: str, several: bool) -> str:
    """The id a portfolio keeps what outlives its run under (trading state, executed
    plan rows, protective levels): a run of one portfolio trades the whole account
    (`main`, whatever its id: from `strategy:`, one --strategy, a `portfolios:` list of
    one or a session of one), each of several portfolios its own."""
    return portfolio if several else DEFAULT_PORTFOLIO


def state_keys(portfolios: Sequence[str]) -> list[str]:
    """`state_key` of each of a run's portfolios."""
    return [state_key(p, len(portfolios) > 1) for p in portfolios]


def count_recent_orders(
    store: RunStore,
    gates: Sequence[tuple[str, RiskGate]],
    account: AccountGate | None,
    kind: str,
    now: int,
) -> None:
    """Give each gate (portfolio id, its gate) and the account's the orders that runs of
    `kind` sent from this database in the minute before `now`: a live account's order
    rate spans its restarts (a bot that crash-loops sent them all). A run of one
    portfolio trades the whole account: every portfolio's count; each of several, its own."""
    since, db = now - RATE_WINDOW_MS, store.connection
    for pid, gate in gates:
        gate.count_sent(stored.recent_order_times(db, kind, since, pid if len(gates) > 1 else None))
    if account is not None:
        account.count_sent(stored.recent_order_times(db, kind, since))


def stored_state(store: RunStore, portfolio: str) -> stored.StoredTradingState | None:
    """A portfolio's stored state as a run takes it: its own row, unless a halt that holds
    for it is newer (until resume-trading lifts that halt for it, its own row is older).
    A halt of the whole account, stored as `main` by a run of one strategy, holds for each
    portfolio of a later run with several (they trade the same account); a halt of any
    portfolio holds for a later run of one strategy (`main`: it trades the whole account,
    that portfolio's money included)."""
    states = stored.load_trading_states(store.connection)
    saved = next((s for s in states if s.portfolio == portfolio), None)
    account = portfolio == DEFAULT_PORTFOLIO
    halts = [
        s
        for s in states
        if s.portfolio != portfolio
        and s.state == TradingState.HALTED
        and (account or s.portfolio == DEFAULT_PORTFOLIO)
        and (saved is None or s.updated_at > saved.updated_at)
    ]
    return max(halts, key=lambda s: s.updated_at) if halts else saved


def stored_halt(path: Path, portfolios: Sequence[str]) -> stored.StoredTradingState | None:
    """The halt stored in the database at `path` that holds for one of `portfolios` (as
    a run of them would take it), None when none does or there is no database;
    StoreError for a database that cannot be read."""
    if not path.exists():
        return None
    with RunStore(path, read_only=True) as store:
        for pid in portfolios:
            saved = stored_state(store, pid)
            if saved is not None and saved.state == TradingState.HALTED:
                return saved
    return None


def holds_a_halt(path: Path) -> bool:
    """True when the database at `path` holds a halt of any portfolio (False: no
    database); StoreError for a database that cannot be read."""
    if not path.exists():
        return False
    with RunStore(path, read_only=True) as store:
        states = stored.load_trading_states(store.connection)
    return any(s.state == TradingState.HALTED for s in states)


def lift_halt(
    store: RunStore, profile: str, reason: str, portfolio: str = DEFAULT_PORTFOLIO
) -> tuple[str, str]:
    """`perps-bot resume-trading`: lift a halt (manual or drawdown) and the drawdown
    REDUCING state in a portfolio's stored trading state, restarting the peak at the
    last equity, with the operator's reason. Returns (state before, state after)."""
    saved = stored.load_trading_state(store.connection, portfolio)
    before = _risk_state(store, saved) if saved is not None else None
    if before is None:
        before = RiskState("ACTIVE", "")
    taken = stored_state(store, portfolio)  # its own, or the account's halt that holds
    was = before.state if taken is None else taken.state
    peak = before.last_equity if before.last_equity is not None else before.peak
    daily = before.daily_reducing
    after = RiskState(
        "REDUCING" if daily else "ACTIVE",
        f"resume-trading: {reason}",
        daily_reducing=daily,
        peak=peak,
        last_equity=before.last_equity,
        day=before.day,
        day_start_equity=before.day_start_equity,
    )
    with store.transaction():
        stored.save_trading_state(
            store.connection, profile=saved.profile if saved else profile, state=after.state,
            detail=after.detail, risk=after.to_json(), run_id=None, source="resume-trading",
            portfolio=portfolio,
        )  # fmt: skip
    return was, after.state


def now_ms() -> int:
    return int(time.time() * 1000)


def _risk_state(store: RunStore, saved: stored.StoredTradingState) -> RiskState:
    """The stored gate state; one line when the object lost a field it needs, holds one
    of the wrong type or disagrees with the row's state (a damaged byte inside a key or
    a value still reads as JSON, but not as this RiskState): never a halt forgotten."""
    try:
        state = RiskState.from_json(saved.risk)
        if state.state != saved.state:
            raise ValueError(f"stored {saved.state!r}, its risk state {state.state!r}")
    except (TypeError, ValueError) as exc:
        what = f"the trading state of portfolio {saved.portfolio}"
        raise damaged(store.path, what, short(str(exc))) from exc
    return state
