"""A third-party-style strategy that enters in `on_start`, before any candle (loaded by
import path in tests/backtest/test_start_orders.py)."""

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from perps_bot.domain import Candle, MarketEvent, Signal, TargetPosition
from perps_bot.strategies import NO_SIGNALS, Strategy, StrategyContext


class HoldParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    exit_at: int = Field(0, ge=0, description="go flat on this candle (1-based); 0: never")


class HoldFromStart(Strategy):
    """Targets one order size long of every symbol from the start (`on_start`), flat on
    its candle `exit_at`."""

    name = "hold_from_start"
    Params = HoldParams
    params: HoldParams

    def __init__(self, params: Mapping[str, Any], ctx: StrategyContext) -> None:
        super().__init__(params, ctx)
        self.seen: dict[str, int] = {}

    def on_start(self) -> Sequence[Signal]:
        order_size = self.ctx.order_size
        return tuple(TargetPosition(s, order_size(s), reason="hold") for s in self.ctx.symbols)

    def on_event(self, event: MarketEvent) -> Sequence[Signal]:
        if type(event) is not Candle:
            return NO_SIGNALS
        seen = self.seen[event.symbol] = self.seen.get(event.symbol, 0) + 1
        if seen == self.params.exit_at:
            return (TargetPosition(event.symbol, 0.0, reason="exit"),)
        return NO_SIGNALS


class QuietHoldFromStart(HoldFromStart):
    """The same, taking quiet stretches of candles (orchestrator.quiet)."""

    name = "quiet_hold_from_start"
    candle_stretches: ClassVar[bool] = True
