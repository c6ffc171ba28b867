"""Test strategies for captures, replays and drift: one that remembers every event it was
shown, and a probe that trades both ways: a resting limit buy at the best bid (fill
rate), market buys and exits (slippage)."""

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from perps_bot.domain import (
    BookSnapshot,
    MarketEvent,
    OrderIntent,
    OrderType,
    OrderUpdate,
    Side,
    Signal,
    TargetPosition,
)
from perps_bot.strategies import NO_SIGNALS, Strategy, StrategyContext

#: every event a SeeAll strategy of this process was shown, in order
SEEN: list[MarketEvent] = []


class ProbeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str = Field("ETH-PERP", description="the symbol to trade")
    every: int = Field(3, ge=1, description="order books between two actions")


class DriftProbe(Strategy):
    """Every `every` books, in turn: a limit buy at the best bid (when none rests), go
    flat, a market buy of one order size, go flat."""

    name = "drift_probe"
    Params = ProbeParams
    params: ProbeParams

    def __init__(self, params: Mapping[str, Any], ctx: StrategyContext) -> None:
        super().__init__(params, ctx)
        self.books = 0
        self.resting: set[str] = set()

    def on_event(self, event: MarketEvent) -> Sequence[Signal]:
        if not isinstance(event, BookSnapshot) or event.symbol != self.params.symbol:
            return NO_SIGNALS
        self.books += 1
        if self.books % self.params.every or not event.bids:
            return NO_SIGNALS
        step = (self.books // self.params.every) % 4
        size = self.ctx.order_size(event.symbol)
        if step == 1:
            if self.resting:
                return NO_SIGNALS
            bid = event.bids[0][0]
            maker = OrderIntent(event.symbol, Side.BUY, size, OrderType.LIMIT, bid, reason="maker")
            return (maker,)
        if step == 2:
            return (TargetPosition(event.symbol, size, reason="taker"),)
        return (TargetPosition(event.symbol, 0.0, reason="flat"),)

    def on_order_update(self, update: OrderUpdate) -> Sequence[Signal]:
        if update.order.order_type is OrderType.LIMIT:
            open_ = str(update.status) in ("accepted", "partially_filled")
            if update.order.remaining > 0 and open_:
                self.resting.add(update.client_id)
            else:
                self.resting.discard(update.client_id)
        return NO_SIGNALS

    def state(self) -> object:
        return (self.books, set(self.resting))

    def restore(self, state: Any) -> None:
        self.books, resting = state
        self.resting = set(resting)


class SeeAll(DriftProbe):
    """The probe, remembering every event it is shown (in-process runs only)."""

    name = "see_all"

    def on_event(self, event: MarketEvent) -> Sequence[Signal]:
        SEEN.append(event)
        return super().on_event(event)
