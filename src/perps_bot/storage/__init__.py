"""Run state in SQLite: runs, orders, fills, positions, funding, equity, promotions."""

from perps_bot.storage.records import (
    FillRecord,
    FundingRecord,
    MarkRecord,
    PromotionRecord,
    RunRecord,
)
from perps_bot.storage.store import RunStore, StoreError

__all__ = [
    "FillRecord",
    "FundingRecord",
    "MarkRecord",
    "PromotionRecord",
    "RunRecord",
    "RunStore",
    "StoreError",
]
