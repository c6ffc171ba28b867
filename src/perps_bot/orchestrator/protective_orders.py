"""The orchestrator's side of the protective orders (SPEC 16): after a fill or a
reconciliation the portfolio's `Protector` (orchestrator.protection) says which stops
and take-profits should exist; here that is turned into orders sent with the
portfolio's next ones, levels a target moves are applied at once, and the cancels due
(protective orders, entries withdrawn by a halt or a flatten) are sent, one the venue
could not send kept for the next time.

A mixin of `Orchestrator` (orchestrator.engine, through orchestrator.venue_calls); the
engine's attributes it uses are declared by its base (orchestrator.controls), for the
type checker.
"""

from collections.abc import Sequence

from perps_bot.domain import Order, Signal, TargetPosition
from perps_bot.orchestrator.controls import PortfolioControls
from perps_bot.orchestrator.portfolio import Portfolio
from perps_bot.venues import OrderRejected, VenueUnavailable


class ProtectiveOrders(PortfolioControls):
    def _drain_updates(self) -> None:
        raise NotImplementedError

    def _protect(self, portfolio: Portfolio, symbols: set[str], ts: int) -> None:
        """Bring the protective orders of `symbols` in step with the positions; what
        they need is sent with the portfolio's next orders."""
        for symbol in sorted(symbols):
            if portfolio.protection.sync(symbol, ts) and portfolio not in self._signalled:
                self._signalled.append(portfolio)
        if portfolio.protection.to_cancel:
            self._cancel_due = True

    def _relevel(
        self, portfolio: Portfolio, signals: Sequence[Signal], ts: int, made: Sequence[Order]
    ) -> None:
        """Targets that ask for protection of the side already held move its levels at
        once (a plan's new stop), whether or not they make an order; not levels whose
        orders the exchange would refuse (OrderFlow.levels_fit). `made`: the orders of
        this event, not sent yet."""
        for signal in signals:
            if type(signal) is TargetPosition and (
                signal.stop_loss is not None or signal.take_profit is not None
            ):
                symbol, protection = signal.symbol, portfolio.protection
                levels = (signal.stop_loss, signal.take_profit)
                new = protection.new_levels(symbol, signal.size, *levels)
                if new is None or not portfolio.flow.levels_fit(
                    symbol, new.side, levels, ts, (self.venue.open_orders(), made)
                ):
                    continue
                if protection.relevel(symbol, signal.size, *levels):
                    self._protect(portfolio, {symbol}, ts)

    def _protective(self, portfolio: Portfolio) -> list[Order]:
        """The protective orders `_protect` decided, now placed (sent by the caller)."""
        orders, portfolio.protection.to_place = portfolio.protection.to_place, []
        for order in orders:
            portfolio.protection.placed(order)
        return orders

    async def _cancel_protective(self) -> None:
        """Send the cancels due (protective orders, withdrawn entries). One the venue
        could not send (unavailable) waits for the next cancels due, at the next
        reconciliation at the latest (`_protect`): dropped, a withdrawn entry rested on
        in the flattened or halted portfolio."""
        self._cancel_due = False
        for p in self.portfolios:
            doomed, p.protection.to_cancel = p.protection.to_cancel, []
            unsent: list[str] = []
            for client_id in doomed:
                try:
                    await self.venue.cancel(client_id, self.clock.now())
                except VenueUnavailable as exc:
                    self.log.warning("cancel of order %s failed, tried again later: %s",
                                     client_id, exc)  # fmt: skip
                    unsent.append(client_id)
                except OrderRejected as exc:
                    self.log.warning("cancel of order %s failed: %s", client_id, exc)
            p.protection.to_cancel.extend(c for c in unsent if c not in p.protection.to_cancel)
        self._drain_updates()
