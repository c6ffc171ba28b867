"""Strategies: the base class the orchestrator drives, the built-ins, and the loader.

A strategy turns market events into signals (target positions or order
intents) with a reason string; it never sizes against risk limits or talks to
a venue. The risk gate and the venue come after it in the pipeline.
"""

from typing import TYPE_CHECKING

from perps_bot.lazy_exports import lazy_exports
from perps_bot.strategies.base import (
    MAX_WARMUP_BARS,
    NO_SIGNALS,
    NoParams,
    Strategy,
    StrategyContext,
    StrategyError,
    validate_params,
)
from perps_bot.strategies.loader import (
    BUILTIN_STRATEGIES,
    load_strategy,
    source_hash,
    strategy_fingerprint,
)

if TYPE_CHECKING:
    from perps_bot.strategies.funding_carry import FundingCarry, FundingCarryParams
    from perps_bot.strategies.mean_reversion import MeanReversion, MeanReversionParams
    from perps_bot.strategies.sma_cross import SmaCross, SmaCrossParams

# The built-ins load on first use (PEP 562), as BUILTIN_STRATEGIES loads them: a run
# of one strategy does not build the parameter models of the others.
_LAZY = {
    "FundingCarry": "perps_bot.strategies.funding_carry",
    "FundingCarryParams": "perps_bot.strategies.funding_carry",
    "MeanReversion": "perps_bot.strategies.mean_reversion",
    "MeanReversionParams": "perps_bot.strategies.mean_reversion",
    "SmaCross": "perps_bot.strategies.sma_cross",
    "SmaCrossParams": "perps_bot.strategies.sma_cross",
}


__getattr__ = lazy_exports(__name__, _LAZY, globals())


__all__ = [
    "BUILTIN_STRATEGIES",
    "MAX_WARMUP_BARS",
    "NO_SIGNALS",
    "FundingCarry",
    "FundingCarryParams",
    "MeanReversion",
    "MeanReversionParams",
    "NoParams",
    "SmaCross",
    "SmaCrossParams",
    "Strategy",
    "StrategyContext",
    "StrategyError",
    "load_strategy",
    "source_hash",
    "strategy_fingerprint",
    "validate_params",
]
