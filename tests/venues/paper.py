"""A matching engine with the ledger as its position book, booking every fill it makes,
as the orchestrator does: the smallest faithful paper venue for unit tests."""

from perps_bot.config.models import AccountConfig, MarginMode
from perps_bot.domain import Fill, MarketEvent
from perps_bot.ledger import Ledger
from perps_bot.venues.fill_models import build_engine
from perps_bot.venues.matching import MatchingRules


def rich_ledger(balance: float = 1e12) -> Ledger:
    """A ledger too rich to be liquidated by any unit test."""
    return Ledger(
        AccountConfig(initial_balance=balance, margin_mode=MarginMode.CROSS, default_leverage=1.0)
    )


class Paper:
    def __init__(self, rules: MatchingRules, seed: int, ledger: Ledger | None = None) -> None:
        self.ledger = ledger if ledger is not None else rich_ledger()
        self.engine = build_engine(rules, seed, lambda _portfolio: self.ledger)

    def on_market(self, event: MarketEvent) -> list[Fill]:
        fills = list(self.engine.on_market(event))
        for fill in fills:
            self.ledger.apply_fill(fill)
        return fills

    def position(self, symbol: str) -> float:
        return self.ledger.position_size(symbol)
