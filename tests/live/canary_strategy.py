"""A deterministic test strategy for the full-bot canary runs: one entry, one exit."""

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from perps_bot.domain import BookSnapshot, MarketEvent, Signal, TargetPosition
from perps_bot.strategies import NO_SIGNALS, Strategy, StrategyContext


class FlipParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str = Field("ETH-PERP", description="the symbol to trade")
    hold: int = Field(3, ge=1, description="order books to wait before going flat again")
    # The canary profile's sma_cross params merge in; accepted and ignored.
    fast: int = Field(10, description="unused (merged in from the canary profile)")
    slow: int = Field(30, description="unused (merged in from the canary profile)")


class FlipOnce(Strategy):
    """Goes long one order size on the first book of `symbol`, flat `hold` books later."""

    name = "flip_once"
    Params = FlipParams
    params: FlipParams

    def __init__(self, params: Mapping[str, Any], ctx: StrategyContext) -> None:
        super().__init__(params, ctx)
        self.books = 0

    def on_event(self, event: MarketEvent) -> Sequence[Signal]:
        if not isinstance(event, BookSnapshot) or event.symbol != self.params.symbol:
            return NO_SIGNALS
        self.books += 1
        if self.books == 1:
            size = self.ctx.order_size(event.symbol)
            return (TargetPosition(event.symbol, size, reason="canary entry"),)
        if self.books == 1 + self.params.hold:
            return (TargetPosition(event.symbol, 0.0, reason="canary exit"),)
        return NO_SIGNALS
