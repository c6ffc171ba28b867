"""A tiny third-party-style strategy, loaded by import path in the loader tests."""

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from perps_bot.domain import Candle, MarketEvent, OrderIntent, Side, Signal
from perps_bot.strategies import NO_SIGNALS, Strategy


class MyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    level: float = Field(100.0, gt=0, description="buy when a close is above this level")


class MyStrategy(Strategy):
    """Buys one order size whenever a candle closes above `level`."""

    name = "my_strategy"
    Params = MyParams
    params: MyParams

    def on_event(self, event: MarketEvent) -> Sequence[Signal]:
        if isinstance(event, Candle) and event.close > self.params.level:
            size = self.ctx.order_size(event.symbol)
            return (OrderIntent(event.symbol, Side.BUY, size, reason="above level"),)
        return NO_SIGNALS


def not_a_strategy() -> None:
    """Something importable that is not a Strategy class."""


class Unfinished(Strategy):
    """Abstract: on_event is missing."""

    name = "unfinished"


class PlainParams(MyStrategy):
    """Params that are not a pydantic model: not a Strategy the loader can configure."""

    name = "plain_params"
    Params = dict  # type: ignore[assignment]
