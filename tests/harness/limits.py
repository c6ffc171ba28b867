"""Risk limits that stay out of the way: tests that drive a run into liquidation (or
at any size) need the gate to let the orders through and never halt."""

from typing import Any

LOOSE_RISK: dict[str, Any] = {
    "max_order_notional": 1e9,
    "max_position_notional": 1e9,
    "max_leverage": 200.0,
    "max_drawdown": 1.0,
    "reducing_drawdown": 1.0,
    "daily_loss_limit": 1.0,
}
