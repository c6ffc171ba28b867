"""Protective orders (SPEC 16): the stop-loss and take-profit an entry asks for, placed
as reduce-only STOP_MARKET / TAKE_PROFIT_MARKET orders once the entry fills, one
cancelling the other, and kept in step with the position.

One `Protector` per portfolio. It watches the entries that carry a `stop_loss` or
`take_profit`; a fill of one sets the symbol's levels (side, stop, take-profit). After
every fill of the symbol and at every reconciliation `sync` compares the protective
orders that should exist with those working at the venue:

* flat (or the position flipped side): every protective order of the symbol is
  cancelled and the levels are forgotten. So when the stop fills, the take-profit is
  cancelled (one-cancels-other), and a plan's `flat` row removes both.
* otherwise a stop and a take-profit at the levels, for at least the position's size:
  a missing one (never placed, cancelled or expired at the exchange, lost while the bot
  was down) is placed again with a new client id; one too small (the position grew) is
  replaced.

Protective orders are ordinary orders of the portfolio: client ids from its order flow,
stored before they are sent, so a live venue's exactly-once rules (SPEC 9) hold for
them too. They skip the risk gate: they only ever reduce a position, and a halted bot
must still be able to stop out. Their reason, `stop` or `take_profit`, is the exit
reason of the trade they close.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from perps_bot.domain import Instrument, Order, OrderType, OrderUpdate, PositionBook, Side

EPS = 1e-12


@dataclass(frozen=True, slots=True)
class Levels:
    side: Side  # the side of the protected position (BUY: long)
    stop: float | None
    take_profit: float | None

    def wanted(self) -> list[tuple[OrderType, float, str]]:
        found = [
            (OrderType.STOP_MARKET, self.stop),
            (OrderType.TAKE_PROFIT_MARKET, self.take_profit),
        ]
        return [(kind, price, kind.exit_reason) for kind, price in found if price is not None]


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
        self._entries: dict[str, tuple[float | None, float | None]] = {}
        self.levels: dict[str, Levels] = {}
        #: open protective orders by client id
        self.working: dict[str, Order] = {}
        #: what `sync` decided and the orchestrator has not done yet
        self.to_place: list[Order] = []
        self.to_cancel: list[str] = []

    def watch(self, order: Order) -> None:
        """An order about to be sent: remember it if it asks for protection."""
        if order.stop_loss is not None or order.take_profit is not None:
            self._entries[order.client_id] = (order.stop_loss, order.take_profit)

    def on_fill(self, client_id: str, symbol: str, side: Side) -> None:
        asked = self._entries.get(client_id)
        if asked is not None:
            self.levels[symbol] = Levels(side, *asked)

    def on_update(self, update: OrderUpdate) -> None:
        if update.client_id in self.working and not update.status.is_open:
            del self.working[update.client_id]
        if update.client_id in self._entries and not update.status.is_open and not update.filled:
            del self._entries[update.client_id]  # never filled: nothing to protect

    def sync(self, symbol: str, ts: int) -> bool:
        """Decide the cancels and placements `symbol` needs; True when there are some."""
        held = self._positions.position_size(symbol)
        mine = [o for o in self.working.values() if o.symbol == symbol]
        levels = self.levels.get(symbol)
        if levels is not None and (abs(held) <= EPS or levels.side.sign * held < 0):
            del self.levels[symbol]
            levels = None
        keep: set[str] = set()
        if levels is not None:
            for kind, price, reason in levels.wanted():
                found = self._covering(mine, kind, price, abs(held))
                if found is not None:
                    keep.add(found.client_id)
                else:
                    self.to_place.append(self._order(symbol, kind, price, abs(held), ts, reason))
        for order in mine:
            if order.client_id not in keep and order.client_id not in self.to_cancel:
                self.to_cancel.append(order.client_id)
        return bool(self.to_place or self.to_cancel)

    def adopt(self, open_orders: Iterable[Order]) -> None:
        """Reconciliation: the venue's open protective orders of this portfolio (the
        caller picks them) are the working ones; those gone from the venue are re-placed
        by the next `sync`, those left by an earlier run are kept or cancelled by it."""
        self.working = {
            o.client_id: o for o in open_orders if o.order_type.is_trigger and o.reduce_only
        }

    def symbols(self) -> set[str]:
        """The symbols with protective levels or working protective orders (an orphan
        left by an earlier run is cancelled by their `sync`)."""
        return set(self.levels) | {o.symbol for o in self.working.values()}

    def placed(self, order: Order) -> None:
        self.working[order.client_id] = order

    def _covering(
        self, mine: list[Order], kind: OrderType, price: float, size: float
    ) -> Order | None:
        for order in mine:
            if (order.order_type is kind and order.trigger_price is not None
                    and abs(order.trigger_price - price) <= EPS * max(price, 1.0)
                    and order.remaining >= size - EPS):  # fmt: skip
                return order
        return None

    def _order(
        self, symbol: str, kind: OrderType, price: float, size: float, ts: int, reason: str
    ) -> Order:
        levels = self.levels[symbol]
        side = levels.side.opposite
        instrument = self._instruments.get(symbol)
        if instrument is not None:
            price = instrument.round_price(price, side)
        cid = self._next_id()
        return Order(client_id=cid, symbol=symbol, side=side, size=size, order_type=kind,
                     price=None, reduce_only=True, created_ts=ts, correlation_id=cid,
                     reason=reason, updated_ts=ts, portfolio=self.portfolio,
                     trigger_price=price)  # fmt: skip

    def state(self) -> tuple[object, ...]:
        return (dict(self._entries), dict(self.levels), dict(self.working))

    def restore(self, state: object) -> None:
        assert isinstance(state, tuple)
        entries, levels, working = state
        self._entries, self.levels, self.working = dict(entries), dict(levels), dict(working)
