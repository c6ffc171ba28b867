"""The entry of a flip whose close goes out as several orders (orchestrator.order_parts
`closing_parts`), held back until that close is done.

Sent with the close, the entry would open the other side while the position is still
held: a close that fills only in part (a market or IOC order expiring on a thin book,
an order refused or cancelled) would leave the account neither flat nor on the side
asked for. So the entry waits until none of the close's orders is working any more;
then it goes out, through the risk gate again as the order of its own it is, if the
position is flat, and is denied under its own client id (a warning says why) if it is
not. A newer signal for the symbol supersedes it.

A live run keeps each held entry in the run store as well (`keeper`: orchestrator.
kept_entries), so that the next start sends it once when the bot died before the close
was done, or says why not.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from perps_bot.domain import DenialReason, Instrument, Order, OrderIntent, PositionBook
from perps_bot.orchestrator.recorder import Recorder

#: what a held entry's denial says when the close did not leave the position flat
NOT_FLAT = "the close before it left the position"


@dataclass(frozen=True, slots=True)
class HeldEntry:
    """An entry waiting for its close: `order` as prepared (its own client id, the flip's
    correlation id), `closes` the client ids of the close's orders; `kept`: one an
    earlier live run held back (orchestrator.kept_entries), taken back at this start."""

    order: Order
    closes: frozenset[str]
    kept: bool = False

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


class HeldKeeper(Protocol):
    """Where a live run keeps its held entries beyond the process."""

    def kept(self, held: HeldEntry) -> None:
        """`held` is held back (committed before its close's orders are sent)."""

    def gone(self, held: HeldEntry) -> None:
        """`held` was refused or superseded: it is not to be sent."""


def flat(instrument: Instrument | None, size: float) -> bool:
    """A position the instrument cannot trade any of (less than one step) is flat."""
    if instrument is None:
        return abs(size) <= 1e-12
    return instrument.below_step(abs(size))


class HeldEntries:
    """The entries one portfolio's order flow holds back, by symbol (one per symbol: a
    symbol has one position to flip)."""

    def __init__(self, recorder: Recorder, instruments: Mapping[str, Instrument]) -> None:
        self._rec = recorder
        self._instruments = instruments
        #: the held entries by symbol (empty, the common case, is all the hot path asks:
        #: a dict's truth costs no call)
        self.by_symbol: dict[str, HeldEntry] = {}
        #: a live run's store of them (None: they live with the run, or its checkpoint)
        self.keeper: HeldKeeper | None = None

    def state(self) -> dict[str, HeldEntry]:
        return dict(self.by_symbol)

    def restore(self, state: Mapping[str, HeldEntry]) -> None:
        self.by_symbol = dict(state)

    def hold(self, held: HeldEntry) -> None:
        self.by_symbol[held.order.symbol] = held
        if self.keeper is not None:
            self.keeper.kept(held)

    def released(
        self, ts: int, working: Sequence[Order], book: PositionBook, fresh: Callable[[str], bool]
    ) -> list[HeldEntry]:
        """The held entries whose close is done (none of its orders among `working`: the
        venue's, or this event's not sent yet) and left the position flat: they go out
        now. Those whose close left it held are denied, under their own client id. One
        an earlier run kept waits for fresh market data of its symbol (`fresh`: at the
        start of this run there is none yet)."""
        released: list[HeldEntry] = []
        for symbol, held in list(self.by_symbol.items()):
            if held.waiting(working) or (held.kept and not fresh(symbol)):
                continue
            del self.by_symbol[symbol]
            left = book.position_size(symbol)
            if flat(self._instruments.get(symbol), left):
                released.append(held)
            else:
                self._deny(ts, held, None, f"{NOT_FLAT} {left:g} {symbol}")
        return released

    def withhold(self, ts: int, close: Order, why: tuple[DenialReason | None, str]) -> None:
        """`close`, refused (`why`), is one of a held entry's closing orders: the close
        cannot all go out, so the entry is denied now."""
        held = self.by_symbol.get(close.symbol)
        if held is not None and close.client_id in held.closes:
            del self.by_symbol[close.symbol]
            self._deny(ts, held, why[0], f"the close before it did not all go out ({why[1]})")

    def drop_all(self, ts: int, why: str) -> None:
        """Deny every held entry (`why`: a pause or a flatten of the portfolio): it would
        go out once its close filled, into a portfolio no longer trading."""
        for held in list(self.by_symbol.values()):
            del self.by_symbol[held.order.symbol]
            self._deny(ts, held, None, why)

    def left_at_end(self, resumable: bool) -> None:
        """The run ends with entries still held (a warning each, never silence): kept for
        the next start of the account (`keeper`), or for `--resume` (`resumable`: the
        run did not complete, its checkpoint holds them), or gone with the run."""
        if self.keeper is not None:
            what = "the next start of the account sends it once the close is done"
        elif resumable:
            what = "a --resume of the run goes on with it"
        else:
            what = "the run ended before its close was done"
        for held in self.by_symbol.values():
            self._rec.log.warning("%s", held.not_sent(f"held back at the end: {what}"))

    def supersede(self, held: HeldEntry) -> None:
        """A newer signal for the symbol replaces the entry held for its close."""
        del self.by_symbol[held.order.symbol]
        self._rec.log.info("%s: superseded by a newer signal", held.not_sent("held back"))
        if self.keeper is not None:
            self.keeper.gone(held)

    def _deny(self, ts: int, held: HeldEntry, code: DenialReason | None, why: str) -> None:
        detail = held.not_sent(why)
        self._rec.log.warning("%s", detail)
        self._rec.denial(ts, held.order.symbol, code, detail, held.order.client_id)
        if self.keeper is not None:
            self.keeper.gone(held)
