"""Protective levels that survive the bot (SPEC 9, 16): the stop-loss and take-profit of
each open position, kept in the run store (storage.protective_levels) so that a
restarted bot re-places a protective order that went missing while it was down.

When each fact is written:

* an entry that asks for protection: its levels are committed before its order is
  sent (`pending`), so a crash between the send and the fill cannot lose them;
* its fill: they become the symbol's levels (`filled`); the position size the
  protective orders cover is kept up to date (`covered`);
* the position closes (or flips through the bot's own fills): they are deleted
  (`cleared`); an entry that ends without putting them in force (unfilled, or part-
  filled with the position never on their side): its row is deleted (`ended`).

At every reconciliation (`review`, from `Protector.adopt`), the first one of a run
loads the stored rows: the levels of the entries that filled (also those whose fill
only the crash recovery booked; to the levels' side) and the entries still open on the
exchange. Then the
levels are compared with the positions the books adopted from the exchange:

* the position is the stored side: protected as it is now; a size that changed behind
  the bot's back is one warning line and the orders cover what is held (reduce-only);
* the position is the other side: the levels belong to a position that is gone and
  nothing is known about this one: the portfolio halts, saying why;
* flat: `Protector.sync` clears the levels and cancels what is left.

A protective order that could not be placed (refused, e.g. its trigger is already
passed, or the exchange unreachable) leaves the position unprotected: the portfolio
halts, saying why (once per level), and the next reconciliation tries again.

Client ids: `pbp<scope tag><row id><s|t><n>`, n the row's placements of that kind,
committed before the order exists. So every placement has a new id that says which
levels it protects, and a resend after a crash is never a second order: its intent row
is looked up by that id at the next start (orchestrator.recovery), and an open one is
adopted from the exchange and covers its level.
"""

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace

from perps_bot.domain import Order, OrderType, Side
from perps_bot.monitoring.logs import about
from perps_bot.orchestrator.portfolio import Portfolio
from perps_bot.orchestrator.protection import Levels, Protector
from perps_bot.orchestrator.routing import Routes
from perps_bot.orchestrator.trading_state import state_keys
from perps_bot.storage import RunStore
from perps_bot.storage import protective_levels as stored
from perps_bot.storage.protective_levels import StoredLevels

log = logging.getLogger("perps_bot.orchestrator")

#: a position size difference below this (base units) is rounding
SIZE_TOLERANCE = 1e-9


class StoredLevelsKeeper:
    """protection.LevelsKeeper in the run store, under `scope` (profile/portfolio)."""

    def __init__(
        self,
        store: RunStore,
        scope: str,
        run_id: str,
        halt: Callable[[str], None],
        *,
        portfolio: str | None = None,
    ) -> None:
        self._store = store
        #: its ERROR lines are about the portfolio (its promotion counts them)
        self._about = about(portfolio) if portfolio is not None else {}
        self._scope = scope
        self._run_id = run_id
        self._halt = halt
        #: the client ids of this scope's protective orders start with it
        self.prefix = "pbp" + hashlib.sha1(scope.encode()).hexdigest()[:4]
        self._active: dict[str, StoredLevels] = {}  # symbol -> its levels' row
        self._pending: dict[str, StoredLevels] = {}  # entry client id -> its row
        self._refused: set[tuple[int, OrderType]] = set()
        self._loaded = False
        with store.transaction():
            stored.create(store.connection)

    # -- the protector's events ----------------------------------------------------
    def pending(self, order: Order, side: Side) -> None:
        """`side`: the protected position's (Protector.watch)."""
        levels = (order.stop_loss, order.take_profit)
        db = self._store.connection
        with self._store.transaction():
            stored.add_pending(db, self._scope, order.symbol, order.client_id, side, levels,
                               self._run_id)  # fmt: skip
        row = stored.find(db, self._scope, order.symbol, order.client_id)
        if row is not None:
            self._pending[order.client_id] = row

    def filled(self, symbol: str, client_id: str) -> None:
        row = self._pending.pop(client_id, None)
        if row is None:
            return  # a later fill of an entry already in force
        with self._store.transaction():
            stored.activate(self._store.connection, self._scope, row.id, symbol, self._run_id)
        self._active[symbol] = replace(row, active=True)

    def relevel(self, symbol: str, levels: Levels) -> None:
        """New levels for the position held (Protector.relevel): its row's, or a row of
        their own when the position had none."""
        db, row = self._store.connection, self._active.get(symbol)
        with self._store.transaction():
            if row is None:
                entry = f"levels-{self._run_id}-{symbol}"  # no entry order made them
                stored.add_pending(db, self._scope, symbol, entry, levels.side,
                                   (levels.stop, levels.take_profit), self._run_id)  # fmt: skip
                row = stored.find(db, self._scope, symbol, entry)
                assert row is not None
                stored.activate(db, self._scope, row.id, symbol, self._run_id)
            else:
                stored.set_levels(db, row.id, self._run_id, levels.side, levels.stop,
                                  levels.take_profit)  # fmt: skip
        self._active[symbol] = replace(row, active=True, side=levels.side, stop=levels.stop,
                                       take_profit=levels.take_profit)  # fmt: skip

    def ended(self, client_id: str) -> None:
        row = self._pending.pop(client_id, None)
        if row is not None:
            self._delete([row.id])

    def cleared(self, symbol: str) -> None:
        row = self._active.pop(symbol, None)
        if row is not None:
            self._delete([row.id])

    def covered(self, symbol: str, size: float) -> None:
        row = self._active.get(symbol)
        if row is None or (row.size is not None and abs(row.size - size) <= SIZE_TOLERANCE):
            return
        with self._store.transaction():
            stored.update(self._store.connection, row.id, self._run_id, size=size)
        self._active[symbol] = replace(row, size=size)

    def client_id(self, symbol: str, kind: OrderType) -> str | None:
        row = self._active.get(symbol)
        if row is None:
            return None
        stop = kind is OrderType.STOP_MARKET
        if stop:
            row = replace(row, stop_sent=row.stop_sent + 1)
        else:
            row = replace(row, tp_sent=row.tp_sent + 1)
        with self._store.transaction():
            stored.update(self._store.connection, row.id, self._run_id,
                          stop_sent=row.stop_sent, tp_sent=row.tp_sent)  # fmt: skip
        self._active[symbol] = row
        n = row.stop_sent if stop else row.tp_sent
        return f"{self.prefix}{row.id}{'s' if stop else 't'}{n}"

    def refused(self, order: Order, reason: str) -> None:
        row = self._active.get(order.symbol)
        if row is None or (row.id, order.order_type) in self._refused:
            return  # said once per level; the next reconciliation tries again
        self._refused.add((row.id, order.order_type))
        what = "stop" if order.order_type is OrderType.STOP_MARKET else "take-profit"
        self._stop_trading(f"the {what} of {order.symbol} at {order.trigger_price} was not"
                           f" placed ({reason}): the position is not protected by it; the"
                           " next reconciliation tries again")  # fmt: skip

    # -- reconciliation ------------------------------------------------------------
    def review(self, protector: Protector) -> None:
        """The stored levels against the positions the books hold now (module doc)."""
        if not self._loaded:
            self._load(protector)
            self._loaded = True
        for symbol, levels in sorted(protector.levels.items()):
            held = protector.held(symbol)
            if symbol in protector.unknown:
                continue  # the books do not know the position: they stay as they are
            if abs(held) <= SIZE_TOLERANCE:
                continue  # closed: sync clears the levels and cancels what is left
            if levels.side.sign * held < 0:
                del protector.levels[symbol]
                self.cleared(symbol)
                side = "long" if levels.side.sign > 0 else "short"
                self._stop_trading(f"the protective levels of {symbol} are for a {side}"
                                   f" position, the exchange holds {held:+g}: no stop is"
                                   " known for it")  # fmt: skip
                continue
            row = self._active.get(symbol)
            if (
                row is not None
                and row.size is not None
                and abs(abs(held) - row.size) > SIZE_TOLERANCE
            ):
                log.warning("protective orders of %s covered %g, the exchange holds %+g: they"
                            " now cover the position held (reduce-only)", symbol, row.size,
                            held, extra=self._about)  # fmt: skip

    def _load(self, protector: Protector) -> None:
        """The stored rows into the protector: levels in force and entries still open
        (after the crash recovery booked what the exchange did while the bot was down).
        An entry's fills put its levels in force only if they brought the position to
        their side (as `Protector.on_fill`): one part-filled short of it still waits
        if it is open, and is stale if it ended."""
        db = self._store.connection
        rows = stored.load(db, self._scope)
        waiting = [r.entry_client_id for r in rows if not r.active]
        filled = stored.entries_filled(db, waiting)
        still_open = stored.entries_open(db, waiting)
        stale: list[int] = []
        # oldest first, the levels in force before those whose entry filled while the bot
        # was down (their fill came after): the last levels of a symbol are in force
        rows.sort(key=lambda r: not r.active)
        for row in rows:
            reached = row.side.sign * protector.held(row.symbol) > SIZE_TOLERANCE
            if row.active or (reached and row.entry_client_id in filled):
                older = self._active.get(row.symbol)
                if older is not None:
                    stale.append(older.id)
                if not row.active:
                    with self._store.transaction():
                        stored.activate(db, self._scope, row.id, row.symbol, self._run_id)
                self._active[row.symbol] = replace(row, active=True)
                protector.levels[row.symbol] = Levels(row.side, row.stop, row.take_profit)
                if not row.entry_client_id.startswith("levels-"):  # made by an entry
                    protector.entry_of[row.symbol] = row.entry_client_id
                log.info("protective levels of %s restored: %s stop %s take-profit %s"
                         " (entry %s)", row.symbol, row.side, row.stop, row.take_profit,
                         row.entry_client_id)  # fmt: skip
            elif row.entry_client_id in still_open:
                self._pending[row.entry_client_id] = row
                protector.remember(row.entry_client_id, Levels(row.side, row.stop, row.take_profit))
            else:
                stale.append(row.id)  # its entry ended without putting them in force
        self._delete(stale)

    def _stop_trading(self, reason: str) -> None:
        log.error("%s; trading stops until an operator looks (perps-bot resume-trading)",
                  reason, extra=self._about)  # fmt: skip
        self._halt(reason)

    def _delete(self, row_ids: list[int]) -> None:
        if row_ids:
            with self._store.transaction():
                stored.delete(self._store.connection, row_ids)


def keep_levels(
    portfolios: Sequence[Portfolio],
    routes: Routes,
    store: RunStore,
    profile: str,
    now: Callable[[], int],
) -> None:
    """Give each portfolio's protector its stored levels (runs that trade the account);
    the protective orders an earlier run left are routed back to their portfolio."""
    for p, key in zip(portfolios, state_keys([p.id for p in portfolios]), strict=True):
        keeper = StoredLevelsKeeper(store, f"{profile}/{key}", p.rec.run_id, _halter(p, now),
                                    portfolio=p.id)  # fmt: skip
        p.protection.keeper = keeper
        routes.claim(keeper.prefix, p)


def _halter(portfolio: Portfolio, now: Callable[[], int]) -> Callable[[str], None]:
    """A halt of the portfolio that is journaled and stored like any state change (a
    restart keeps it; only resume-trading lifts it)."""

    def halt(reason: str) -> None:
        portfolio.risk.halt(reason)
        portfolio.rec.state_change(now(), str(portfolio.risk.state), reason)

    return halt
