"""The schema of a line of `logs/events.jsonl` (monitoring.journal writes them).

Its own module: the journal's writer is on the compiled hot path (perps_bot.compiled),
which does not compile pydantic models.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict

EventType = Literal[
    "run_start",
    "run_end",
    "signal",
    "denial",
    "order",
    "order_update",
    "order_rejected",
    "fill",
    "trade_closed",
    "funding",
    "liquidation",
    "equity",
    "state_change",
    "reconcile",
    "venue",
]


class JournalEvent(BaseModel):
    """One line of events.jsonl: these common fields, then the type-specific ones."""

    model_config = ConfigDict(frozen=True, extra="allow")

    type: EventType
    run_id: str
    ts: int
    correlation_id: str | None = None
