"""Instruments (SPEC 8): the one description of each tradable contract for a run.

Built once per run: from the profile (`instruments:` over the built-in data) for dev
runs and backtests, from the exchange's markets (through ccxt) for dry runs and live
runs. Everything that needs tick, step, minimums, maintenance tiers, fees or the
exchange's symbol reads them from here.
"""

from perps_bot.instruments.catalog import (
    InstrumentCatalog,
    InstrumentError,
    UnknownInstrument,
    builtin_instruments,
    catalog_from_profile,
    effective_instrument_data,
)
from perps_bot.instruments.markets import catalog_from_markets

__all__ = [
    "InstrumentCatalog",
    "InstrumentError",
    "UnknownInstrument",
    "builtin_instruments",
    "catalog_from_markets",
    "catalog_from_profile",
    "effective_instrument_data",
]
