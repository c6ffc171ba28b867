"""Loopback Binance USDM emulator: the test ground for a client of the real exchange.

It is test and rehearsal tooling, not part of any product: the real, unmodified ccxt
client talks to it over HTTP on 127.0.0.1 (point its REST and websocket URLs at
``server.base_url``), so a trading client's live path is exercised through ccxt's own
parsing and error mapping, with scripted faults (``Fault``) for the failure paths and
an optional liquidation engine (``EmulatorServer(liquidation=True)``).

It depends on nothing but aiohttp and numpy, and keeps its own instrument data
(instruments.py): it plays the exchange, so its rules are the exchange's.
"""

from perps_emulator.errors import BinanceError, EmulatorError
from perps_emulator.faults import Fault, FaultKind
from perps_emulator.server import EmulatorServer, RecordedRequest, is_loopback_host
from perps_emulator.state import EmulatorState, EmuOrder, EmuPosition, EmuTrade

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
    "is_loopback_host",
]
