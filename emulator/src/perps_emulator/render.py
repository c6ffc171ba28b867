"""Shared pieces of the REST handlers: number formats and symbol selection.

Binance sends most numbers as strings with fixed decimals; ``f8`` and ``plain`` give
those strings so every handler formats money and filters the same way.
"""

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from perps_emulator.engine import Engine
from perps_emulator.markets import PriceProcess

Params = Mapping[str, str]
Handler = Callable[[Params], Any]


def f8(value: float) -> str:
    return f"{value:.8f}"


def plain(value: Decimal) -> str:
    """Decimal without exponent notation ("1E-9" -> "0.000000001")."""
    return format(value, "f")


class Handlers:
    """Base of the handler groups: the engine, the clock and symbol selection."""

    def __init__(self, engine: Engine, clock: Callable[[], int]) -> None:
        self.engine = engine
        self.clock = clock
        self.markets = engine.markets

    def selected(self, params: Params) -> list[PriceProcess]:
        """The market named by ``symbol``, or every market when it is not sent."""
        symbol = params.get("symbol")
        return [self.engine.market(symbol)] if symbol else list(self.markets.values())

    def one_or_all(self, params: Params, render: Callable[[PriceProcess], Any]) -> Any:
        """One object for ``symbol``, a list of all without it (Binance's convention)."""
        rendered = [render(m) for m in self.selected(params)]
        return rendered[0] if params.get("symbol") else rendered
