"""Held flip entries that survive the bot (SPEC 9): a live run keeps the entry of each flip
it holds back for its close (orchestrator.held_entries) in the run store
(storage.held_entries), committed before the close's orders are sent.

A bot that dies before the close is done (killed, or stopped) lost the entry with its
process, and the next start ended flat where the strategy had asked for the other side,
without a line saying so. The next start of a run that trades the account now takes
the kept entries back before it trades, each with a warning saying what it does with
it. An entry whose client id has an order row (its intent is committed before its
request leaves: it was sent, and recovery settles it) or a denial was decided and is
dropped. The others wait as they did: the crash recovery and the start's
reconciliation settle the close first; at the first event the entry goes out through
the risk gate if the position is flat, under its own client id (once: from then on it
has an order row), and is denied with a warning if not; a newer signal of the
strategy for the symbol supersedes it. A paper run keeps them in its checkpoint.
"""

import logging
from collections.abc import Sequence
from typing import Any

from perps_bot.domain import Order, OrderType, Side, iso_utc
from perps_bot.orchestrator.held_entries import HeldEntry
from perps_bot.orchestrator.portfolio import Portfolio
from perps_bot.orchestrator.trading_state import state_keys
from perps_bot.storage import RunStore
from perps_bot.storage import held_entries as stored

log = logging.getLogger("perps_bot.orchestrator")

_FIELDS = ("client_id", "symbol", "size", "price", "created_ts", "correlation_id", "reason",
           "stop_price", "portfolio", "stop_loss", "take_profit")  # fmt: skip


class StoredHeldKeeper:
    """held_entries.HeldKeeper in the run store, under `scope` (profile/portfolio)."""

    def __init__(self, store: RunStore, scope: str, run_id: str) -> None:
        self._store = store
        self._scope = scope
        self._run_id = run_id
        with store.transaction():
            stored.create(store.connection)

    def kept(self, held: HeldEntry) -> None:
        with self._store.transaction():
            stored.put(self._store.connection, self._scope, _entry_json(held.order),
                       list(held.closes), self._run_id)  # fmt: skip

    def gone(self, held: HeldEntry) -> None:
        o = held.order
        with self._store.transaction():
            stored.delete(self._store.connection, self._scope, o.symbol, o.client_id)

    def taken_back(self) -> list[HeldEntry]:
        """The scope's kept entries not decided yet (the decided ones are dropped)."""
        db, out = self._store.connection, []
        for row in stored.load(db, self._scope):
            if stored.decided(db, row.client_id):
                with self._store.transaction():
                    stored.delete(db, self._scope, row.symbol, row.client_id)
                continue
            held = HeldEntry(_entry_order(row.entry), frozenset(row.closes), kept=True)
            log.warning("%s by run %s at %s: it goes out once the close is done and the"
                        " position flat, else it is denied", held.not_sent("held back"),
                        row.run_id, iso_utc(row.created_at)[:19])  # fmt: skip
            out.append(held)
        return out


def _entry_json(order: Order) -> dict[str, Any]:
    values = {name: getattr(order, name) for name in _FIELDS}
    return values | {"side": str(order.side), "order_type": str(order.order_type)}


def _entry_order(entry: dict[str, Any]) -> Order:
    values: dict[str, Any] = {name: entry.get(name) for name in _FIELDS}
    return Order(**values, side=Side(entry["side"]), order_type=OrderType(entry["order_type"]),
                 reduce_only=False, updated_ts=int(entry["created_ts"]))  # fmt: skip


def keep_held(portfolios: Sequence[Portfolio], store: RunStore, profile: str) -> None:
    """Give each portfolio's held entries their keeper (runs that trade the account) and
    take back what an earlier run kept (looked at once the start's recovery and
    reconciliation are done and their symbol has a price: orchestrator.venue_calls
    `_poll`)."""
    for p, key in zip(portfolios, state_keys([p.id for p in portfolios]), strict=True):
        keeper = StoredHeldKeeper(store, f"{profile}/{key}", p.rec.run_id)
        for held in keeper.taken_back():
            p.flow.held.by_symbol[held.order.symbol] = held
        p.flow.held.keeper = keeper
