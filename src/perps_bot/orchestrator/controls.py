"""The orchestrator's controls of a portfolio from outside its strategy (SPEC 11: the
session API's flatten and resume) and its withdrawal of resting entries when the
portfolio stops trading (SPEC 2: a halt lets nothing in, REDUCING only reductions).
Signals from here go the strategy's way: into the portfolio's pending signals, turned
into orders at the next event through the risk gate and the instrument rules.

A mixin of `Orchestrator` (orchestrator.engine, through orchestrator.venue_calls and
orchestrator.protective_orders); the attributes below are the engine's, declared here
for the type checker.
"""

import logging
from collections.abc import Sequence

from perps_bot.domain import (
    Order,
    OrderIntent,
    OrderType,
    Signal,
    TradingState,
    closing_intent,
)
from perps_bot.orchestrator.clock import Clock
from perps_bot.orchestrator.portfolio import ClosingOut, Portfolio
from perps_bot.orchestrator.routing import Routes
from perps_bot.venues import Venue

#: how long after a flatten's closes were made those of the positions still open (no
#: close on its way: denied or refused) are made again (`close_again`)
RETRY_MS = 5_000


class PortfolioControls:
    log: logging.Logger
    _last_price: dict[str, float]
    clock: Clock
    venue: Venue
    routes: Routes
    portfolios: list[Portfolio]
    _signalled: list[Portfolio]
    _cancel_due: bool

    def inject(self, portfolio: Portfolio, signals: Sequence[Signal]) -> None:
        """Signals from outside the strategy (the session API's flatten): turned into
        orders at the next event like the strategy's own, through the risk gate and the
        instrument rules, also while the strategy is paused."""
        if signals:
            if not portfolio.pending:
                self._signalled.append(portfolio)
            portfolio.pending.extend(signals)

    def withdraw_resting(self, portfolio: Portfolio) -> None:
        """Cancel the portfolio's resting orders that are not reduce-only (limit entries):
        they would add exposure if they filled, which a flatten, a halt (nothing passes)
        and the REDUCING state (only reductions pass) must not let in by the back door.
        Protective orders stay: they reduce."""
        cancel = portfolio.protection.to_cancel
        for order in self._open_orders(portfolio):
            if (
                not order.reduce_only
                and order.client_id not in portfolio.protection.working  # plain protective
            ):
                if order.client_id not in cancel:
                    cancel.append(order.client_id)
                self._cancel_due = True

    def withdraw_if_stopped(self, portfolio: Portfolio, was: TradingState) -> None:
        """`withdraw_resting` when the portfolio's state has just left ACTIVE's reach
        (from `was` to HALTED or REDUCING): no entry may fill now."""
        state = portfolio.risk.state
        if state is not was and state is not TradingState.ACTIVE:
            self.withdraw_resting(portfolio)

    def flatten(self, portfolio: Portfolio, reason: str) -> int:
        """Close the portfolio's positions at market and withdraw its resting orders (the
        session API's flatten). Each position goes out as a reduce-only market order of
        the size held: a target of 0 counted an entry still resting as if it had filled,
        and sold it too (long 0.01 with a limit buy of 0.01 resting: a sell of 0.02, the
        portfolio short once it filled), and the entry left resting opened a position
        again when it filled. Protective orders follow the positions (cancelled once
        flat). A position above the exchange's largest market order goes out as several
        orders (orchestrator.order_parts `closing_parts`). The closes are made with the
        next event's orders, on the positions held then (`closes_due`): an entry that
        filled further before its withdrawal landed was left open by a close of the
        position at the flatten. What a market close already on its way (open at the
        venue: a flatten asked a second time after the first one's close went out)
        takes away is not closed again: the close went out twice. The strategy's
        signals still waiting are dropped (`unheard`). A close the risk gate denies or
        the venue refuses is made again until the portfolio is flat (`close_again`).
        Returns how many positions it closes (0 when an earlier flatten's closes are
        still to be made)."""
        portfolio.flattens += 1
        self.unheard(portfolio)
        self.withdraw_resting(portfolio)
        if portfolio.flattening is not None:
            return 0
        portfolio.flattening = reason
        if portfolio not in self._signalled:
            self._signalled.append(portfolio)
        return sum(1 for s in portfolio.ledger.symbols() if self._left_open(portfolio, s) != 0.0)

    def closes_due(self, portfolio: Portfolio, ts: int) -> None:
        """The closes of a flatten (`flatten`), on the positions held now, in place of
        the closes waiting among the portfolio's signals (the strategy's: one of them
        the risk gate denied or the venue refused left that part of the position open,
        the flatten counting on it). The flatten is kept until the portfolio is flat
        (`close_again`)."""
        reason, portfolio.flattening = portfolio.flattening, None
        if reason is None:
            return
        portfolio.closing_out = ClosingOut(reason, ts + RETRY_MS)
        left = {s: n for s in portfolio.ledger.symbols() if (n := self._left_open(portfolio, s))}
        self._closes(portfolio, reason, left)

    def close_again(self, portfolio: Portfolio, ts: int) -> None:
        """A flatten's closes made again for the positions still open `RETRY_MS` after
        they were made, no close of them on its way: the risk gate denied one (the
        order rate, stale data, a halt) or the venue refused it, and the flattened
        portfolio held its position with nothing trying again. Made only when the gate
        would let them through (else the next time: one denial, not one per event);
        the first time, a warning says which positions are still open and why. Over
        once the portfolio is flat, but for less than a step the exchange could trade
        (or resumed: its strategy has it back)."""
        out = portfolio.closing_out
        if out is None:
            return
        closable = [s for s in portfolio.ledger.symbols() if _closable(portfolio, s)]
        if not closable:
            portfolio.closing_out = None
            return
        left = {s: n for s in closable if (n := self._left_open(portfolio, s))}
        if ts < out.next_try or not left:  # not yet, or its closes are on their way
            return
        out.next_try = ts + RETRY_MS
        prices = self._last_price
        blocked = {s: b for s in left if (b := portfolio.risk.blocked(s, ts, prices.get(s, 0.0)))}
        if not out.said:
            out.said = True
            held = ", ".join(f"{s} {n:g}" for s, n in left.items())
            why = "; ".join(f"{s}: {b[0]} ({b[1]})" for s, b in blocked.items())
            self.log.warning(
                "portfolio %s still holds %s after its flatten (%s): its closes were denied"
                " or refused; they are made again as soon as the risk gate lets them through%s",
                portfolio.id, held, out.reason, f" (now: {why})" if why else "",
            )  # fmt: skip
        self._closes(portfolio, out.reason, {s: n for s, n in left.items() if s not in blocked})

    def keep_closing(self) -> None:
        """The portfolios a flatten still closes are looked at again at the next event."""
        for p in self.portfolios:
            if p.closing_out is not None and p not in self._signalled:
                self._signalled.append(p)

    def _closes(self, portfolio: Portfolio, reason: str, left: dict[str, float]) -> None:
        """Closes of the positions `left` (signed) among the portfolio's signals, in place
        of the closes waiting there."""
        portfolio.pending = [s for s in portfolio.pending
                             if not (type(s) is OrderIntent and s.reduce_only)]  # fmt: skip
        portfolio.pending.extend(closing_intent(s, n, reason) for s, n in left.items())

    def _left_open(self, portfolio: Portfolio, symbol: str) -> float:
        """The position in `symbol` (signed) that the market closes open at the venue
        leave (0.0: none, or they close it all)."""
        held = portfolio.ledger.position_size(symbol)
        if held == 0.0:
            return 0.0
        market = OrderType.MARKET
        left = held + sum(
            o.side.sign * o.remaining
            for o in self._open_orders(portfolio)
            if o.symbol == symbol and o.order_type is market and _closes(portfolio, o)
        )
        return left if left * held > 0.0 and abs(left) > 1e-9 * abs(held) else 0.0

    def pause(self, portfolio: Portfolio) -> None:
        """Stop hearing the portfolio's strategy (the session API's pause; its flatten
        pauses too); positions and orders stay."""
        portfolio.paused = True
        self.unheard(portfolio)

    def unheard(self, portfolio: Portfolio) -> None:
        """Drop what the strategy said that waits for the next event (a resume's
        restatement, just before), a restatement still to come, and the entry of a flip
        held back for its close (orchestrator.held_entries, denied): each went out
        although the portfolio was paused (or flattened) again, and opened the position
        its strategy wanted. Closes (reduce-only intents: a flatten's) stay."""
        portfolio.flow.held.drop_all(self.clock.now(), "the portfolio was paused or flattened")
        portfolio.restate = False
        portfolio.pending = [s for s in portfolio.pending
                             if type(s) is OrderIntent and s.reduce_only]  # fmt: skip

    def resume(self, portfolio: Portfolio) -> int:
        """Hand a paused portfolio back to its strategy (the session API's resume): what
        it signalled while paused was dropped, so it states what it wants now
        (`on_resume`), turned into orders at the next event. Returns how many signals
        (0 while it waits for a close on its way: see `_restate`)."""
        portfolio.closing_out = None  # a flatten still closing: over
        if not portfolio.paused:
            return 0
        portfolio.paused = False
        portfolio.restate = True
        return self._restate(portfolio)

    def _restate(self, portfolio: Portfolio, made: Sequence[Order] = ()) -> int:
        """The strategy's `on_resume`, once the books show what the portfolio will hold:
        not while a close is on its way (a flatten's, not sent yet, sent, or made at this
        event: `made`), whose fill is about to take the position away. A strategy asked
        then counted the position as held and wanted nothing, and the close left the
        portfolio flat while its strategy wanted the position. Called again whenever an
        order reaches the venue or ends (`_drain_updates`) and after each event's orders
        are made (a close refused before it exists)."""
        if not portfolio.restate or portfolio.paused or self._closing(portfolio, made):
            return 0
        portfolio.restate = False
        signals = portfolio.strategy.on_resume()
        self.inject(portfolio, signals)
        return len(signals)

    def _restate_waiting(self, made: Sequence[Order] = ()) -> None:
        for p in self.portfolios:
            if p.restate:
                self._restate(p, made)

    def _closing(self, portfolio: Portfolio, made: Sequence[Order]) -> bool:
        """Whether a market close of the portfolio is pending, made or open at the venue
        (reduce-only and not a stop or take-profit, which only protect)."""
        if portfolio.flattening is not None or any(
            type(s) is OrderIntent and s.reduce_only for s in portfolio.pending
        ):
            return True
        pid = portfolio.id
        return any(
            not o.order_type.is_trigger and _closes(portfolio, o)
            for o in (*self._open_orders(portfolio), *(o for o in made if o.portfolio == pid))
        )

    def _open_orders(self, portfolio: Portfolio) -> list[Order]:
        """The portfolio's orders open at the venue: by the portfolio their fills are
        booked to (orchestrator.routing), which for an order an earlier run left open
        on the exchange is not the default portfolio id it carries (a portfolio with an
        id of its own kept those resting through its flatten or halt)."""
        owner = self.routes.owner
        return [o for o in self.venue.open_orders() if owner(o.client_id, o.symbol) is portfolio]


def _closable(portfolio: Portfolio, symbol: str) -> bool:
    """Whether the portfolio holds a position in `symbol` that an order could close (at
    least one step of the instrument)."""
    held = abs(portfolio.ledger.position_size(symbol))
    instrument = portfolio.flow.instruments.get(symbol)
    return held > 0.0 and (instrument is None or not instrument.below_step(held))


def _closes(portfolio: Portfolio, order: Order) -> bool:
    """Whether the portfolio's `order` closes (part of) its position: reduce-only, or
    sent plain where the exchange nets the portfolios' positions (`OrderFlow.netted`: a
    close that does not also reduce the account's goes out plain, reduce-only the
    exchange refused it): any order of the portfolio against its position, no larger
    than it."""
    if order.reduce_only:
        return True
    if portfolio.flow.netted is None or order.order_type.is_trigger:
        return False
    held = portfolio.ledger.position_size(order.symbol)
    return order.side.sign * held < 0 and order.remaining <= abs(held) * (1 + 1e-9)
