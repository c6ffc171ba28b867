"""Run state in SQLite: runs, orders, fills, positions, funding, equity, promotions.

The names below load on first use (PEP 562): a backtest's writer process
(storage.writer_process) imports only the connection it writes through, not the store,
its records and numpy (about half of its start-up).
"""

from typing import TYPE_CHECKING

from perps_bot.lazy_exports import lazy_exports

if TYPE_CHECKING:
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

_RECORDS = "perps_bot.storage.records"
_LAZY = {
    "damaged": "perps_bot.storage.connection",
    "EquityChunk": "perps_bot.storage.equity_blocks",
    "PRICE": "perps_bot.storage.plot_series",
    "SymbolSeries": "perps_bot.storage.plot_series",
    "ExcursionRecord": _RECORDS,
    "ExcursionRow": _RECORDS,
    "FillRecord": _RECORDS,
    "FillRow": _RECORDS,
    "FundingRecord": _RECORDS,
    "PromotionRecord": _RECORDS,
    "RunRecord": _RECORDS,
    "RunStore": "perps_bot.storage.store",
    "StoreError": "perps_bot.storage.store",
}

__getattr__ = lazy_exports(__name__, _LAZY, globals())

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
