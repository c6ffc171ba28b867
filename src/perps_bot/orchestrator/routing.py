"""Which portfolio an event or an order belongs to (SPEC 10).

A market event goes to the portfolios that trade its symbol; an order's fills and
updates go back to the portfolio that placed it, known by its client id. An order
none of them placed (an earlier run's, one the exchange made) is booked to the portfolio
whose client id prefix it carries (`claim`: the protective orders of a live account,
orchestrator.protective_levels), else to the portfolio the store recorded as placing it
(`recall`: an earlier live run's order left open on the exchange), else to the one
portfolio trading its symbol, else to the first, and said in the log: its fills must be
booked somewhere, never lost.
"""

import logging
from collections.abc import Callable, Sequence

from perps_bot.domain import Order
from perps_bot.orchestrator.portfolio import Portfolio

log = logging.getLogger("perps_bot.orchestrator")


class Routes:
    __slots__ = ("by_id", "by_symbol", "owners", "portfolios", "prefixes", "primary", "recall")

    def __init__(self, portfolios: Sequence[Portfolio]) -> None:
        self.portfolios = list(portfolios)
        self.primary = self.portfolios[0]
        self.by_id = {p.id: p for p in self.portfolios}
        #: symbol -> the portfolios trading it (read on every event)
        self.by_symbol: dict[str, tuple[Portfolio, ...]] = {}
        for p in self.portfolios:
            for symbol in sorted(p.symbols):
                self.by_symbol[symbol] = (*self.by_symbol.get(symbol, ()), p)
        self.owners: dict[str, Portfolio] = {}  # client id -> its portfolio
        self.prefixes: dict[str, Portfolio] = {}  # client id prefix -> its portfolio
        #: the portfolio id the store has for a client id an earlier run placed
        self.recall: Callable[[str], str | None] | None = None

    def claim(self, prefix: str, portfolio: Portfolio) -> None:
        """Client ids starting with `prefix` are `portfolio`'s, also an earlier run's."""
        self.prefixes[prefix] = portfolio

    def placed(self, order: Order) -> Portfolio:
        """The portfolio placing `order` (from now on its fills are routed to it)."""
        portfolio = self.by_id[order.portfolio]
        self.owners[order.client_id] = portfolio
        return portfolio

    def owner(self, client_id: str, symbol: str) -> Portfolio:
        found = self.owners.get(client_id)
        if found is not None:
            return found
        for prefix, portfolio in self.prefixes.items():
            if client_id.startswith(prefix):
                self.owners[client_id] = portfolio
                return portfolio
        recalled = self.by_id.get(self.recall(client_id) or "") if self.recall else None
        if recalled is not None:
            self.owners[client_id] = recalled
            return recalled
        holders = self.by_symbol.get(symbol, ())
        chosen = holders[0] if holders else self.primary
        if len(holders) != 1 and len(self.portfolios) > 1:
            log.warning("order %s (%s) is no portfolio's: booked to %s", client_id, symbol,
                        chosen.id)  # fmt: skip
        self.owners[client_id] = chosen
        return chosen

    def state(self) -> dict[str, str]:
        """client id -> portfolio id, for a checkpoint."""
        return {cid: p.id for cid, p in self.owners.items()}

    def restore(self, state: dict[str, str]) -> None:
        self.owners = {cid: self.by_id[pid] for cid, pid in state.items()}
