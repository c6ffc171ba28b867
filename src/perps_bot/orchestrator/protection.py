"""Protective orders (SPEC 16): the stop-loss and take-profit an entry asks for, placed
as reduce-only STOP_MARKET / TAKE_PROFIT_MARKET orders once the entry fills, one
cancelling the other, and kept in step with the position. On a live account several
portfolios trade a symbol on, the exchange nets their positions into one and judges
reduce-only against it: there they go out plain, of the position's size (`plain`).

One `Protector` per portfolio. It watches the entries that carry a `stop_loss` or
`take_profit`; a fill of one that leaves the position on the levels' side (a reduce-
only entry's are those of the position it reduces) sets the symbol's levels (side,
stop, take-profit). After every fill of the symbol and at every reconciliation `sync`
compares the protective orders that should exist with those working at the venue:

* flat (or the position flipped side): every protective order of the symbol is
  cancelled and the levels are forgotten. So when the stop fills, the take-profit is
  cancelled (one-cancels-other), and a plan's `flat` row removes both.
* otherwise a stop and a take-profit at the levels, for at least the position's size:
  a missing one (never placed, cancelled or expired at the exchange, lost while the bot
  was down) is placed again with a new client id; one too small (the position grew) is
  replaced. A position above the exchange's largest market order is protected by
  several orders of each kind, each within it (`Instrument.pieces`), each with its own
  client id; together they cover the position.

Protective orders are ordinary orders of the portfolio, stored before they are sent, so
a live venue's exactly-once rules (SPEC 9) hold for them too. A run that trades the
account (live) also keeps the levels in the run store (`keeper`,
orchestrator.protective_levels): a restarted bot knows them, re-places what went
missing while it was down, and its protective orders get deterministic client ids.
They skip the risk gate: they only ever reduce a position, and a halted bot must still
be able to stop out. Their reason, `stop` or `take_profit`, is the exit
reason of the trade they close.
"""

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from perps_bot.domain import (
    Instrument,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PositionBook,
    Side,
)
from perps_bot.domain.pickled import by_fields
from perps_bot.domain.record import record

EPS = 1e-12
#: every client id the bot makes starts with it (orchestrator.wiring, the live venue)
BOT_IDS = "pb"


@record
class Levels:
    side: Side  # the side of the protected position (BUY: long)
    stop: float | None
    take_profit: float | None

    def __reduce__(self) -> tuple[object, ...]:
        """A checkpoint pickles the levels (perps_bot.domain.pickled)."""
        return by_fields(self)

    def wanted(self) -> list[tuple[OrderType, float, str]]:
        found = [
            (OrderType.STOP_MARKET, self.stop),
            (OrderType.TAKE_PROFIT_MARKET, self.take_profit),
        ]
        return [(kind, price, kind.exit_reason) for kind, price in found if price is not None]


class LevelsKeeper(Protocol):
    """Where the levels outlive the process (orchestrator.protective_levels)."""

    #: the client ids of the protective orders it names start with it
    prefix: str

    def pending(self, order: Order, side: Side) -> None: ...
    def filled(self, symbol: str, client_id: str) -> None: ...
    def relevel(self, symbol: str, levels: Levels) -> None: ...
    def ended(self, client_id: str) -> None: ...
    def cleared(self, symbol: str) -> None: ...
    def covered(self, symbol: str, size: float) -> None: ...
    def client_id(self, symbol: str, kind: OrderType) -> str | None: ...
    def refused(self, order: Order, reason: str) -> None: ...
    def review(self, protector: "Protector") -> None: ...


class Protector:
    """The protective orders of one portfolio (module docstring)."""

    def __init__(
        self,
        portfolio: str,
        positions: PositionBook,
        instruments: Mapping[str, Instrument],
        next_client_id: Callable[[], str],
    ) -> None:
        self.portfolio = portfolio
        self._positions = positions
        self._instruments = instruments
        self._next_id = next_client_id
        self._entries: dict[str, Levels] = {}  # entry client id -> the levels it asks for
        self._unfilled: dict[str, float] = {}  # entry client id -> its size not filled yet
        self._booked: dict[str, float] = {}  # entry client id -> its fills booked so far
        self._ended: dict[str, float] = {}  # entry client id -> all it filled, once it ended
        self.levels: dict[str, Levels] = {}
        #: symbol -> the client id of the entry whose levels are in force: the correlation
        #: id of its protective orders (events.jsonl links them to the entry they protect)
        self.entry_of: dict[str, str] = {}
        #: open protective orders by client id
        self.working: dict[str, Order] = {}
        #: what `sync` decided and the orchestrator has not done yet
        self.to_place: list[Order] = []
        self.to_cancel: list[str] = []
        self.keeper: LevelsKeeper | None = None
        #: symbols the exchange nets with other portfolios' positions (one live account):
        #: their protective orders go out plain, of the position's size. Reduce-only, the
        #: exchange judged them against the account's net position, and a stop of a long
        #: while the account was short expired unfilled when it triggered
        self.plain: frozenset[str] = frozenset()
        #: symbols whose position the books do not know: the account's differs from the
        #: portfolios' sum and several trade it (orchestrator.reconcile: they halted).
        #: Their protective orders and levels stay as they are: they may protect the
        #: position the exchange holds, and nothing here could say which size they need
        self.unknown: frozenset[str] = frozenset()

    def watch(self, order: Order) -> None:
        """An order about to be sent: remember it if it asks for protection (stored
        first when there is a keeper: a crash after the send cannot lose the levels).
        The levels protect the position the order leaves: a reduce-only order's levels
        are those of the position it reduces (a target cut from 2 to 1 with its stop),
        any other order's those of a position on its own side."""
        if order.stop_loss is not None or order.take_profit is not None:
            side = order.side.opposite if order.reduce_only else order.side
            self.remember(order.client_id, Levels(side, order.stop_loss, order.take_profit))
            self._unfilled[order.client_id] = order.size
            if self.keeper is not None:
                self.keeper.pending(order, side)

    def protects(self, symbol: str, side: Side) -> tuple[bool, bool]:
        """Whether a position of `symbol` on `side` has a stop and a take-profit level
        (its protection grows with it)."""
        levels = self.levels.get(symbol)
        if levels is None or levels.side is not side:
            return False, False
        return levels.stop is not None, levels.take_profit is not None

    def asks(self, client_id: str) -> bool:
        """Whether `client_id` is an entry whose levels wait for its fill (`watch`)."""
        return client_id in self._entries

    def manages(self, client_id: str) -> bool:
        """Whether `client_id` is one of its protective orders (placed, or adopted)."""
        return client_id in self.working

    def remember(self, client_id: str, levels: Levels) -> None:
        """The levels entry `client_id` asks for once it fills."""
        self._entries[client_id] = levels

    def held(self, symbol: str) -> float:
        return self._positions.position_size(symbol)

    def on_fill(self, client_id: str, symbol: str, size: float) -> None:
        """A fill of the portfolio (booked): an entry's levels are in force once the
        position is on their side. Not before: a fill that leaves the position on the
        other side (an order against the position held, a flip filled in part) keeps the
        protection of the position that is still there; an entry filled whole that never
        got there (a short of 1 while long 2) is forgotten with its levels."""
        asked = self._entries.get(client_id)
        if asked is None:
            return
        self._booked[client_id] = self._booked.get(client_id, 0.0) + size
        left = self._unfilled.get(client_id)
        if left is not None:
            left = self._unfilled[client_id] = left - size
        if asked.side.sign * self.held(symbol) > EPS:
            self.levels[symbol] = asked
            self.entry_of[symbol] = client_id
            if self.keeper is not None:
                self.keeper.filled(symbol, client_id)
        elif left is not None and left <= EPS:
            self._forget(client_id)
            return
        self._settle(client_id)

    def relevel(
        self, symbol: str, target: float, stop: float | None, take_profit: float | None
    ) -> bool:
        """A target on the side of the position held that asks for protection (a plan's
        or a planner's new stop for what it holds, often with no order to make: the
        target is met): its levels protect the position from now on. True when they
        changed (`sync` then moves the protective orders)."""
        levels = self.new_levels(symbol, target, stop, take_profit)
        if levels is None:
            return False
        self.levels[symbol] = levels
        if self.keeper is not None:
            self.keeper.relevel(symbol, levels)
        return True

    def new_levels(
        self, symbol: str, target: float, stop: float | None, take_profit: float | None
    ) -> Levels | None:
        """The levels `relevel` would put in force; None when it would change nothing
        (flat, an entry the other way: its fill sets the levels, or the same levels)."""
        held = self.held(symbol)
        if abs(held) <= EPS or target * held <= 0.0:
            return None
        levels = Levels(Side.BUY if held > 0 else Side.SELL, stop, take_profit)
        return None if self.levels.get(symbol) == levels else levels

    def on_update(self, update: OrderUpdate) -> None:
        mine = self.working.get(update.client_id)
        if mine is not None and not update.status.is_open:
            del self.working[update.client_id]
            if update.status is OrderStatus.REJECTED and self.keeper is not None:
                self.keeper.refused(mine, update.reason)
        if update.client_id in self._entries and not update.status.is_open:
            self._ended[update.client_id] = update.filled
            self._settle(update.client_id)

    def _settle(self, client_id: str) -> None:
        """An entry that ended is forgotten once each of its fills is booked (a venue may
        report its end first): levels it put in force stay; levels it never put in force
        (it ended unfilled, or part-filled with the position never on their side) go,
        with their stored row, and no later start takes them for the position's."""
        filled = self._ended.get(client_id)
        if filled is not None and self._booked.get(client_id, 0.0) >= filled - EPS * max(
            filled, 1.0
        ):
            self._forget(client_id)

    def _forget(self, client_id: str) -> None:
        """An entry done with: its stored row goes if its levels never came into force."""
        del self._entries[client_id]
        for done in (self._unfilled, self._booked, self._ended):
            done.pop(client_id, None)
        if self.keeper is not None:
            self.keeper.ended(client_id)

    def sync(self, symbol: str, ts: int) -> bool:
        """Decide the cancels and placements `symbol` needs; True when there are some.
        Placements decided earlier and not sent yet are decided again (a second fill
        before they went out: they would protect the position as it was, next to the
        ones for the position as it is). A symbol of `unknown` is left alone."""
        if symbol in self.unknown:
            return bool(self.to_place or self.to_cancel)
        self.to_place = [o for o in self.to_place if o.symbol != symbol]
        levels = self.levels.get(symbol)
        if levels is None and not self.working:  # no levels, no orders: nothing to do
            return bool(self.to_place or self.to_cancel)
        held = self._positions.position_size(symbol)
        mine = [o for o in self.working.values() if o.symbol == symbol]
        if levels is not None and (abs(held) <= EPS or levels.side.sign * held < 0):
            del self.levels[symbol]
            self.entry_of.pop(symbol, None)
            levels = None
            if self.keeper is not None:
                self.keeper.cleared(symbol)
        keep: set[str] = set()
        if levels is not None:
            if self.keeper is not None:
                self.keeper.covered(symbol, abs(held))
            for kind, price, reason in levels.wanted():
                price = self._on_grid(symbol, price, levels.side.opposite)
                found = self._covering(mine, kind, price, abs(held))
                if found:
                    keep.update(found)
                else:
                    for size in self._pieces(symbol, kind, abs(held)):
                        self.to_place.append(self._order(symbol, kind, price, size, ts, reason))
        for order in mine:
            if order.client_id not in keep and order.client_id not in self.to_cancel:
                self.to_cancel.append(order.client_id)
        return bool(self.to_place or self.to_cancel)

    def adopt(self, open_orders: Iterable[Order]) -> None:
        """Reconciliation: the venue's open protective orders of this portfolio (the
        caller picks them) are the working ones; those gone from the venue are re-placed
        by the next `sync`, those left by an earlier run are kept or cancelled by it.
        Only the bot's own count: placed by this protector, or carrying its keeper's client
        id prefix (an earlier run's; without a keeper, any id the bot makes). A stop the
        trader placed by hand is not the bot's to cancel: it stays on the exchange, on top
        of the bot's protection."""
        prefix = self.keeper.prefix if self.keeper is not None else BOT_IDS
        self.working = {
            o.client_id: o
            for o in open_orders
            if o.order_type.is_trigger and (o.reduce_only or o.symbol in self.plain)
            and (o.client_id in self.working or o.client_id.startswith(prefix))
        }  # fmt: skip
        if self.keeper is not None:
            self.keeper.review(self)  # the stored levels against the positions held

    def symbols(self) -> set[str]:
        """The symbols with protective levels or working protective orders (an orphan
        left by an earlier run is cancelled by their `sync`)."""
        return set(self.levels) | {o.symbol for o in self.working.values()}

    def placed(self, order: Order) -> None:
        self.working[order.client_id] = order

    def _covering(self, mine: list[Order], kind: OrderType, price: float, size: float) -> list[str]:
        """The client ids of the working orders of `kind` at `price` that cover `size`:
        one that does alone, else all of them together (a position above the exchange's
        largest market order is protected by several, `_pieces`); none when they do not."""
        same = [o for o in mine if o.order_type is kind and o.trigger_price is not None
                and abs(o.trigger_price - price) <= EPS * max(price, 1.0)]  # fmt: skip
        slack = EPS * max(size, 1.0)  # the pieces' float sum may fall a hair short
        # a plain order (`plain`) larger than the position would open the other side
        most = size + slack if same and same[0].symbol in self.plain else math.inf
        for order in same:
            if size - slack <= order.remaining <= most:
                return [order.client_id]
        if len(same) > 1 and size - slack <= math.fsum(o.remaining for o in same) <= most:
            return [o.client_id for o in same]
        return []

    def _pieces(self, symbol: str, kind: OrderType, size: float) -> tuple[float, ...]:
        """The sizes of the orders that protect `size`: one, or several within the
        exchange's largest market order (a stop becomes one: Binance holds stops and
        take-profits to MARKET_LOT_SIZE), as a close is split (orchestrator.order_flow)."""
        instrument = self._instruments.get(symbol)
        return instrument.pieces(size, kind) if instrument is not None else (size,)

    def _on_grid(self, symbol: str, price: float, side: Side) -> float:
        """The trigger price as the order carries it (the instrument's tick grid), so an
        order is compared with its level at the price it was placed at."""
        instrument = self._instruments.get(symbol)
        return instrument.round_price(price, side) if instrument is not None else price

    def _order(
        self, symbol: str, kind: OrderType, price: float, size: float, ts: int, reason: str
    ) -> Order:
        side = self.levels[symbol].side.opposite
        cid = self.keeper.client_id(symbol, kind) if self.keeper is not None else None
        cid = cid or self._next_id()
        link = self.entry_of.get(symbol, cid)  # no entry known (adopted): its own id
        return Order(client_id=cid, symbol=symbol, side=side, size=size, order_type=kind,
                     price=None, reduce_only=symbol not in self.plain, created_ts=ts,
                     correlation_id=link,
                     reason=reason, updated_ts=ts, portfolio=self.portfolio,
                     trigger_price=price)  # fmt: skip

    def state(self) -> tuple[object, ...]:
        return (dict(self._entries), dict(self._unfilled), dict(self.levels), dict(self.working),
                dict(self._booked), dict(self._ended), dict(self.entry_of))  # fmt: skip

    def restore(self, state: object) -> None:
        assert isinstance(state, tuple)
        entries, unfilled, levels, working, *later = state  # older: the first four (or six)
        booked, ended, entry_of = (*later, {}, {}, {})[:3]
        self._entries, self._unfilled = dict(entries), dict(unfilled)
        self.levels, self.working = dict(levels), dict(working)
        self._booked, self._ended = dict(booked), dict(ended)
        self.entry_of = dict(entry_of)
