"""Run state in SQLite: runs, orders, fills, positions, funding, equity, promotions."""

from perps_bot.storage.connection import damaged
from perps_bot.storage.equity_blocks import EquityChunk
from perps_bot.storage.plot_series import PRICE, SymbolSeries
from perps_bot.storage.records import (
    ExcursionRecord,
    ExcursionRow,
    FillRecord,
    FillRow,
    FundingRecord,
    PromotionRecord,
    RunRecord,
)
from perps_bot.storage.store import RunStore, StoreError

__all__ = [
    "PRICE",
    "EquityChunk",
    "ExcursionRecord",
    "ExcursionRow",
    "FillRecord",
    "FillRow",
    "FundingRecord",
    "PromotionRecord",
    "RunRecord",
    "RunStore",
    "StoreError",
    "SymbolSeries",
    "damaged",
]
