"""A test strategy that never trades and logs one ERROR line when it starts: the errors
of one portfolio of a run with several (promotion's `error_lines` criterion)."""

from collections.abc import Sequence

from perps_bot.domain import MarketEvent, Signal
from perps_bot.strategies import NO_SIGNALS, Strategy


class Grumbling(Strategy):
    """Holds nothing; says one ERROR line at its start."""

    name = "grumbling"

    def on_start(self) -> Sequence[Signal]:
        self.ctx.logger.error("grumbling: something of mine went wrong")
        return NO_SIGNALS

    def on_event(self, event: MarketEvent) -> Sequence[Signal]:
        return NO_SIGNALS
