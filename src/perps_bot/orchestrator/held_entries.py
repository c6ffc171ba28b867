"""The entry of a flip whose close goes out as several orders (orchestrator.order_flow
`closing_parts`), held back until that close is done.

Sent with the close, the entry would open the other side while the position is still
held: a close that fills only in part (a market or IOC order expiring on a thin book,
an order refused or cancelled) would leave the account neither flat nor on the side
asked for. So the entry waits until none of the close's orders is working any more;
then it goes out, through the risk gate again as the order of its own it is, if the
position is flat, and is denied under its own client id (a warning says why) if it is
not. A newer signal for the symbol supersedes it.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from perps_bot.domain import Instrument, Order, OrderIntent

#: what a held entry's denial says when the close did not leave the position flat
NOT_FLAT = "the close before it left the position"


@dataclass(frozen=True, slots=True)
class HeldEntry:
    """An entry waiting for its close: `order` as prepared (its own client id, the flip's
    correlation id), `closes` the client ids of the close's orders."""

    order: Order
    closes: frozenset[str]

    @classmethod
    def after(cls, order: Order, closes: Iterable[Order]) -> "HeldEntry":
        return cls(order, frozenset(o.client_id for o in closes))

    def intent(self) -> OrderIntent:
        """The entry as an intent of its own (what the risk gate checks at its release)."""
        o = self.order
        return OrderIntent(symbol=o.symbol, side=o.side, size=o.size, order_type=o.order_type,
                           reduce_only=False, reason=o.reason, stop_price=o.stop_price,
                           stop_loss=o.stop_loss, take_profit=o.take_profit)  # fmt: skip

    def waiting(self, working: Sequence[Order]) -> bool:
        """True while one of the close's orders is still working at the venue."""
        return any(o.client_id in self.closes for o in working)

    @property
    def signed(self) -> float:
        return self.order.side.sign * self.order.size

    def not_sent(self, why: str) -> str:
        """The detail of its denial."""
        o = self.order
        return f"{o.side} {o.size:g} {o.symbol}, the entry of a flip, not sent: {why}"


def flat(instrument: Instrument | None, size: float) -> bool:
    """A position the instrument cannot trade any of (less than one step) is flat."""
    if instrument is None:
        return abs(size) <= 1e-12
    return instrument.below_step(abs(size))
