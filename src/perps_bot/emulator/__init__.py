"""Loopback Binance USDM emulator: the test ground for the real exchange path.

The real, unmodified ccxt client (built by ``perps_bot.exchange.create_exchange`` with
``base_url=server.base_url``) talks to it over HTTP on 127.0.0.1, so the live venue and
market-data feed are exercised through ccxt's own parsing and error mapping, with
scripted faults (``Fault``) for the failure paths.
"""

from perps_bot.emulator.engine import BinanceError, EmulatorState, EmuOrder, EmuPosition, EmuTrade
from perps_bot.emulator.faults import Fault, FaultKind
from perps_bot.emulator.server import EmulatorError, EmulatorServer, RecordedRequest

__all__ = [
    "BinanceError",
    "EmuOrder",
    "EmuPosition",
    "EmuTrade",
    "EmulatorError",
    "EmulatorServer",
    "EmulatorState",
    "Fault",
    "FaultKind",
    "RecordedRequest",
]
