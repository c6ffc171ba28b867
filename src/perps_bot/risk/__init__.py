"""The risk gate between signals and execution: hard limits and the trading state."""

from perps_bot.risk.gate import DAY_MS, MarginRequired, RiskDecision, RiskGate
from perps_bot.risk.rate_window import RATE_WINDOW_MS
from perps_bot.risk.state import RiskState

__all__ = ["DAY_MS", "RATE_WINDOW_MS", "MarginRequired", "RiskDecision", "RiskGate", "RiskState"]
