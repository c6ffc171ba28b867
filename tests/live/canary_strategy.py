"""A deterministic test strategy for the full-bot canary runs: one entry, one exit."""

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from perps_bot.domain import (
    BookSnapshot,
    MarketEvent,
    OrderIntent,
    OrderType,
    Side,
    Signal,
    TargetPosition,
)
from perps_bot.strategies import NO_SIGNALS, Strategy, StrategyContext


class FlipParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str = Field("ETH-PERP", description="the symbol to trade")
    hold: int = Field(3, ge=1, description="order books to wait before going flat again")


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
            return (self._entry(event),)
        if self.books == 1 + self.params.hold:
            return (TargetPosition(event.symbol, 0.0, reason="canary exit"),)
        return NO_SIGNALS

    def _entry(self, event: BookSnapshot) -> TargetPosition:
        return TargetPosition(
            event.symbol, self.ctx.order_size(event.symbol), reason="canary entry"
        )


class FlipEveryParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str = Field("ETH-PERP", description="the symbol to trade")
    every: int = Field(2, ge=1, description="order books between two target changes")


class FlipEvery(Strategy):
    """Long one order size, then flat, then long ... every `every` books: as many orders
    as a short run can make (the crash test kills it at random moments)."""

    name = "flip_every"
    Params = FlipEveryParams
    params: FlipEveryParams

    def __init__(self, params: Mapping[str, Any], ctx: StrategyContext) -> None:
        super().__init__(params, ctx)
        self.books = 0

    def on_event(self, event: MarketEvent) -> Sequence[Signal]:
        if not isinstance(event, BookSnapshot) or event.symbol != self.params.symbol:
            return NO_SIGNALS
        self.books += 1
        if self.books % self.params.every:
            return NO_SIGNALS
        long = (self.books // self.params.every) % 2 == 1
        size = self.ctx.order_size(event.symbol) if long else 0.0
        return (TargetPosition(event.symbol, size, reason="flip"),)


class BidParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str = Field("ETH-PERP", description="the symbol to bid for")
    below: float = Field(0.9, gt=0, lt=1, description="the bid as a fraction of the best bid")
    bids: int = Field(1, ge=0, description="how many bids to place (0: none)")


class RestingBid(Strategy):
    """Places `bids` buy limits of one order size at `below` x the best bid, one per
    book, and nothing else: an order that rests on the exchange, also after the run."""

    name = "resting_bid"
    Params = BidParams
    params: BidParams

    def __init__(self, params: Mapping[str, Any], ctx: StrategyContext) -> None:
        super().__init__(params, ctx)
        self.placed = 0

    def on_event(self, event: MarketEvent) -> Sequence[Signal]:
        if not isinstance(event, BookSnapshot) or event.symbol != self.params.symbol:
            return NO_SIGNALS
        if self.placed >= self.params.bids or not event.bids:
            return NO_SIGNALS
        self.placed += 1
        price = event.bids[0][0] * self.params.below
        size = self.ctx.order_size(event.symbol)
        return (OrderIntent(event.symbol, Side.BUY, size, OrderType.LIMIT, price, reason="bid"),)


class HoldParams(FlipParams):
    short: bool = Field(False, description="short one order size instead of long")
    stop: float = Field(0.0, ge=0, lt=1, description="a stop-loss this share of the best bid"
                        " or ask away (0: none)")  # fmt: skip


class HoldOnce(FlipOnce):
    """One order size long (or short) on the first book of `symbol`, flat `hold` books
    later (FlipOnce with a side, a stop-loss and a restatement on resume)."""

    name = "hold_once"
    Params = HoldParams
    params: HoldParams

    def _entry(self, event: BookSnapshot) -> TargetPosition:
        short, stop = self.params.short, self.params.stop
        size = self.ctx.order_size(event.symbol) * (-1 if short else 1)
        stop_loss = None
        if stop and event.bids and event.asks:
            stop_loss = event.asks[0][0] * (1 + stop) if short else event.bids[0][0] * (1 - stop)
        return TargetPosition(event.symbol, size, reason="canary entry", stop_loss=stop_loss)

    def on_resume(self) -> Sequence[Signal]:
        """Its position again when it does not hold it (before the exit)."""
        symbol = self.params.symbol
        if not 1 <= self.books <= self.params.hold or self.ctx.account.position_size(symbol):
            return NO_SIGNALS
        size = self.ctx.order_size(symbol) * (-1 if self.params.short else 1)
        return (TargetPosition(symbol, size, reason="canary resume"),)
