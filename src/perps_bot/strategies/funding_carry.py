"""`funding_carry`: stand on the receiving side of extreme funding.

A positive funding rate means longs pay shorts (SPEC 3), so when the rate
settled at a funding time is at or above `threshold` the strategy targets a
short, and at or below -`threshold` a long. Funding rates are strongly
autocorrelated, so the rate just settled is the best cheap forecast of the next
one; the position collects the next settlement if the extreme persists. It holds
while the rate stays beyond `exit_threshold` on the same side (hysteresis, so a
rate wobbling around the entry level does not churn fees), goes flat once it does
not, and flips directly when the rate reaches the opposite extreme.

It acts on FundingRate events only; the position carries price risk, which the
risk gate's caps bound. No stop: the exit is decided by funding, not price.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from perps_bot.domain import FundingRate, MarketEvent, Signal
from perps_bot.feeds.columns import CandleColumns
from perps_bot.strategies.base import NO_SIGNALS, CandleRun, StrategyContext
from perps_bot.strategies.common import PositionStrategy, SideState, SymbolStates, target


class FundingCarryParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = Field(
        0.0005,
        gt=0.0,
        description="enter when |funding rate| >= threshold (per funding interval; 0.0005 = 0.05%)",
    )
    exit_threshold: float = Field(
        0.0001,
        ge=0.0,
        description="hold while the rate stays beyond exit_threshold on the same side",
    )

    @model_validator(mode="after")
    def _exit_below_entry(self) -> "FundingCarryParams":
        if self.exit_threshold > self.threshold:
            raise ValueError(
                f"exit_threshold ({self.exit_threshold}) must not exceed threshold "
                f"({self.threshold})"
            )
        return self


class FundingCarry(PositionStrategy[SideState]):
    """Short when funding is very positive, long when very negative."""

    name = "funding_carry"
    Params = FundingCarryParams
    params: FundingCarryParams
    candle_stretches = True  # acts on funding events only
    quote_stretches = True  # funding only: a quote says nothing to it

    def candle_run(self, block: CandleColumns) -> CandleRun:
        """Candles say nothing to this strategy."""

        def run(
            i: int, j: int, plot_at: Sequence[int], plot: Callable[[int], None]
        ) -> tuple[int, Sequence[Signal]]:
            for k in plot_at:
                plot(k)
            return j, NO_SIGNALS

        return run

    def __init__(self, params: Mapping[str, Any], ctx: StrategyContext) -> None:
        super().__init__(params, ctx)
        self._states = SymbolStates(SideState, ctx.symbols)

    def on_event(self, event: MarketEvent) -> Sequence[Signal]:
        if not isinstance(event, FundingRate):
            return NO_SIGNALS
        symbol = event.symbol
        state = self._states[symbol]
        rate = event.rate
        entry = self.params.threshold
        hold = self.params.exit_threshold
        if rate >= entry:
            wanted = -1
        elif rate <= -entry:
            wanted = 1
        elif (state.side < 0 and rate > hold) or (state.side > 0 and rate < -hold):
            wanted = state.side
        else:
            wanted = 0
        if wanted == state.side:
            return NO_SIGNALS
        if wanted == 0:
            state.flat()
            why = f"funding_carry exit: rate {rate:.6f} within {hold}"
            return (target(symbol, 0, 0.0, why, None),)
        state.go(wanted, event.mark, 0.0)
        direction = "short" if wanted < 0 else "long"
        why = f"funding_carry {direction}: rate {rate:.6f} beyond {entry}"
        return (target(symbol, wanted, self.ctx.order_size(symbol), why, None),)
