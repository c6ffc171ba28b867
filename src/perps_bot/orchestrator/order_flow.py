"""Signals -> orders: the strategy -> risk gate -> instrument rules part of the stages.

A target position is netted against the position in the ledger and the quantity still
in flight at the venue (so a target is never ordered twice while the first order is on
its way), and a difference the instrument cannot express (less than one step) is no
order at all. The risk gate then approves, resizes or denies the intent (SPEC 2),
counting the orders of its side on their way (at the venue, or earlier in the batch)
against its caps, and the instrument rounds and checks what is left against the
exchange's minimums (SPEC 8) before the order exists: the same rule for every venue,
paper or live (orchestrator.instrument_orders, with the closes above the exchange's
largest market order split and the entry of a flip held until its close is done).
"""

from collections.abc import Mapping, Sequence

from perps_bot.domain import (
    DEFAULT_PORTFOLIO,
    AccountView,
    DenialReason,
    Instrument,
    Order,
    OrderIntent,
    Side,
    Signal,
    TargetPosition,
)
from perps_bot.domain.enums import UNKNOWN
from perps_bot.ledger import Ledger
from perps_bot.orchestrator.held_entries import HeldEntries, flat
from perps_bot.orchestrator.instrument_orders import InstrumentOrders
from perps_bot.orchestrator.protective_count import (
    Manages,
    Protects,
    beyond_limit,
    manages_none,
    unprotected,
)
from perps_bot.orchestrator.recorder import Recorder
from perps_bot.risk import RiskGate
from perps_bot.risk.account_gate import AccountGate
from perps_bot.risk.gate import RiskDecision, cap_price
from perps_bot.venues import Venue

#: positions smaller than this (base units) are treated as flat when diffing targets
SIZE_EPSILON = 1e-12

_side_for = Side.for_delta


class OrderFlow(InstrumentOrders):
    """Turns a stage's signals into approved, instrument-valid orders."""

    def __init__(
        self,
        *,
        risk: RiskGate,
        ledger: Ledger,
        venue: Venue,
        instruments: Mapping[str, Instrument],
        recorder: Recorder,
        client_prefix: str,
        portfolio: str = DEFAULT_PORTFOLIO,
        account: AccountGate | None = None,
        netted: AccountView | None = None,
    ) -> None:
        """`netted`: the account's positions when the exchange holds every portfolio's in
        one (one-way) position, and judges a reduce-only order against it (live, several
        portfolios); None when each portfolio's position is its own (paper venues)."""
        self.risk = risk
        self.netted = netted
        self.portfolio = portfolio
        self.account = account  # the account-level caps when portfolios share an account
        self.ledger = ledger
        self.venue = venue
        self.instruments = dict(instruments)  # a plain dict: looked up once per signal
        self.rec = recorder
        self._prefix = client_prefix
        self.seq = 0
        #: entries of flips waiting for their close (orchestrator.held_entries)
        self.held = HeldEntries(recorder, self.instruments)
        #: the protection (stop, take-profit: is there one) a position of the symbol on
        #: the side given has already (the portfolio's Protector sets it)
        self.protected: Protects = unprotected
        #: whether a client id is one of the portfolio's protective orders (its Protector)
        self.manages: Manages = manages_none
        #: the order flows of the other portfolios on the account where the exchange
        #: counts their stops and take-profits with this one's against its limit per
        #: symbol (live, several portfolios; orchestrator.portfolio_wiring)
        self.peers: Sequence[OrderFlow] = ()
        #: new protective levels refused (`levels_fit`): said once
        self._refused_levels: set[tuple[str, Side, float | None, float | None]] = set()

    def orders(
        self,
        signals: Sequence[Signal],
        ts: int,
        last_price: Mapping[str, float],
        batch: Sequence[Order] = (),
    ) -> list[Order]:
        """`batch`: the orders the other portfolios made at this event, not sent yet (the
        account's caps count them)."""
        orders: list[Order] = []
        for signal in signals:
            working = self.venue.open_orders()  # read once: both checks below see it
            intent = self.intent(signal, working)
            if intent is None:
                continue
            cid = self.next_client_id()
            self.rec.signal(ts, intent.symbol, str(intent.side), intent.size, intent.reason, cid)
            self._send(intent, cid, ts, last_price, (working, batch, orders))
        if self.held.by_symbol:  # flip entries waiting for their close (orchestrator.held_entries)
            ahead = [*self.venue.open_orders(), *orders]
            risk = self.risk

            def fresh(symbol: str) -> bool:  # an order for it would not be refused as stale
                return risk.fresh(symbol, ts, last_price.get(symbol, 0.0))

            done = self.held.released(ts, ahead, self.ledger, fresh)
            for held in done:
                cid, working = held.order.client_id, self.venue.open_orders()
                made = self._send(held.intent(), cid, ts, last_price, (working, batch, orders))
                for order in made:  # still linked to the flip's signal
                    order.correlation_id = held.order.correlation_id
        return orders

    def _send(
        self,
        intent: OrderIntent,
        cid: str,
        ts: int,
        last_price: Mapping[str, float],
        lists: tuple[Sequence[Order], Sequence[Order], list[Order]],
    ) -> list[Order]:
        """One intent through the risk gate and the instrument; the orders it makes are
        added to `lists[2]` (this event's) and returned. `lists`: the venue's open
        orders, the other portfolios' of this event, this one's."""
        working, batch, orders = lists
        price = last_price.get(intent.symbol, 0.0)
        rec = self.rec
        unknown = self.unknown_order(intent.symbol, working)
        if unknown is not None:
            detail = f"order {unknown} of {intent.symbol} has an unknown outcome"
            rec.denial(ts, intent.symbol, DenialReason.ORDER_STATUS_UNKNOWN, detail, cid)
            return []
        ahead = self.on_its_side(intent, (working, orders))
        decision = self.risk.check(intent, ts, price, ahead)
        if not decision.approved:
            rec.denial(ts, intent.symbol, decision.reason, decision.detail, cid)
            return []
        made: list[Order] = []
        if self._protectable(intent, decision.size, lists, ts, cid):
            made = self._approved(intent, decision, cid, ts, price, (working, batch, orders))
        if not made:  # refused after the gate: it never goes out
            self.risk.withdraw(ts)
        elif len(made) > 1:  # a split close: each of its orders counts in the rate
            self.risk.sent_more(ts, len(made) - 1)
        orders.extend(made)
        return made

    def _protectable(
        self,
        intent: OrderIntent,
        size: float,
        lists: Sequence[Sequence[Order]],
        ts: int,
        cid: str,
    ) -> bool:
        """False, the denial recorded, for an entry that would leave a position (once the
        portfolio's orders on their way fill: `lists`, the venue's open orders and those
        made at this event) whose stop and take-profit (asked for by it or by an entry of
        the portfolio on its way, or the position's already) take more orders than the
        exchange keeps open for the symbol beside the account's others: the exchange
        would refuse the ones beyond (orchestrator.protective_count)."""
        instrument = self.instruments.get(intent.symbol)
        if instrument is None or instrument.max_algo_orders is None or intent.reduce_only:
            return True
        asked = (intent.stop_loss is not None, intent.take_profit is not None)
        refusal = beyond_limit(self, instrument, (intent.side, size), self.protected, lists, asked)
        if refusal is not None:
            self.rec.denial(ts, intent.symbol, refusal.reason, refusal.detail, cid)
        return refusal is None

    def levels_fit(
        self, symbol: str, side: Side, levels: tuple[float | None, float | None], ts: int,
        lists: Sequence[Sequence[Order]],
    ) -> bool:  # fmt: skip
        """False, the denial recorded (once for the same levels), when new protective
        levels (stop, take-profit) for the position held on `side` (a target's: Protector.
        relevel) take more orders than the exchange keeps open for the symbol beside the
        account's others: they are not taken, the position keeps the protection it has."""
        instrument = self.instruments.get(symbol)
        if instrument is None or instrument.max_algo_orders is None:
            return True
        wanted = (levels[0] is not None, levels[1] is not None)

        def protects(symbol: str, on: Side) -> tuple[bool, bool]:
            return wanted if on is side else (False, False)

        refusal = beyond_limit(self, instrument, (side, 0.0), protects, lists)
        key = (symbol, side, *levels)
        if refusal is not None and key not in self._refused_levels:
            self._refused_levels.add(key)
            detail = f"{refusal.detail}; new levels {levels} not taken, the old ones stay"
            self.rec.denial(ts, symbol, refusal.reason, detail, "")
        return refusal is None

    def _approved(
        self,
        intent: OrderIntent,
        decision: RiskDecision,
        cid: str,
        ts: int,
        price: float,
        on_way: Sequence[Sequence[Order]],
    ) -> list[Order]:
        """The orders the gate approved (one, or a close above the exchange's largest
        market order in several: `_instrument_orders`), once the account's caps (`on_way`:
        the orders they count as filled) and the instrument took them; none, the denial
        recorded, when they refuse it."""
        rec = self.rec
        size = decision.size
        cut = (decision.reason, decision.detail) if decision.reason is not None else None
        if self.account is not None:
            ahead = self.on_its_side(intent, on_way, anyone=True)
            at = cap_price(intent, price)
            whole = self.account.check(intent.symbol, intent.side, size, at, ahead, ts)
            if whole.reason is not None and whole.size <= 0:
                rec.denial(ts, intent.symbol, whole.reason, whole.detail, cid)
                return []
            if whole.reason is not None:  # the account's cap cut it (further)
                cut = (whole.reason, whole.detail)
            size = whole.size
        orders = self._instrument_orders(intent, decision, (cid, ts, price, size), on_way)
        if self.account is not None and len(orders) != 1:
            if orders:  # a split close: each of its orders counts in the account's rate
                self.account.sent_more(ts, len(orders) - 1)
            else:
                self.account.withdraw(ts)
        if orders and cut is not None:  # the order line says why it is smaller
            rec.resized(cid, intent.size, str(cut[0]), cut[1])
        return orders

    def intent(self, signal: Signal, working: Sequence[Order]) -> OrderIntent | None:
        """The order a signal asks for; None when a target is already met (to the step).
        `working`: the venue's open orders."""
        waiting = self.held.by_symbol.get(signal.symbol)
        if isinstance(signal, OrderIntent):
            if waiting is not None:  # a newer order for the symbol: the held entry goes
                self.held.supersede(waiting)
            return signal
        assert isinstance(signal, TargetPosition)
        held = self.ledger.position_size(signal.symbol)
        delta = signal.size - (held + self.in_flight(signal.symbol, working))
        if waiting is not None:  # the held entry makes the same target: it stays
            if flat(self.instruments.get(signal.symbol), delta - waiting.signed):
                return None
            self.held.supersede(waiting)
        if abs(delta) <= SIZE_EPSILON:
            return None
        instrument = self.instruments.get(signal.symbol)
        if instrument is not None and instrument.below_step(abs(delta)):
            return None  # closer than one step: nothing the exchange could trade
        # reduce-only when it only shrinks the position actually held (not the one the
        # orders in flight will make): the exchange checks it against what is held
        reducing = held * delta < 0 and abs(delta) <= abs(held)
        return OrderIntent(
            symbol=signal.symbol,
            side=_side_for(delta),
            size=abs(delta),  # a market order: OrderIntent's default type
            reduce_only=reducing,
            reason=signal.reason,
            stop_price=signal.stop_price,
            stop_loss=signal.stop_loss,
            take_profit=signal.take_profit,
        )

    def unknown_order(self, symbol: str, working: Sequence[Order]) -> str | None:
        """The client id of an order of `symbol` among the venue's open orders `working`
        (of any portfolio: the account is one) whose outcome the venue does not know yet:
        nothing new is sent for the symbol until the exchange says what became of it."""
        for order in working:
            if order.symbol == symbol and order.status is UNKNOWN:
                return order.client_id
        return None

    def on_its_side(
        self, intent: OrderIntent, lists: Sequence[Sequence[Order]], anyone: bool = False
    ) -> float:
        """The quantity of this portfolio's (`anyone`: every portfolio's) orders of the
        intent's symbol and side on their way, in `lists`: open at the venue or made at
        this event (not sent yet). The risk gates count them against their caps as if
        filled; those of the other side may never fill, so they make no room."""
        mine, symbol, side = self.portfolio, intent.symbol, intent.side
        return sum(
            o.remaining
            for orders in lists
            for o in orders
            if o.symbol == symbol
            and o.side is side
            and (anyone or o.portfolio == mine)
            and not o.order_type.is_trigger
        )

    def in_flight(self, symbol: str, working: Sequence[Order]) -> float:
        """Signed quantity of this portfolio's orders of `symbol` among the venue's open
        orders `working` not filled yet (stops and take-profits protect a position, they
        do not move it yet)."""
        mine = self.portfolio
        return sum(
            o.side.sign * o.remaining
            for o in working
            if o.symbol == symbol and o.portfolio == mine and not o.order_type.is_trigger
        )
