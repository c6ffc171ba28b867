"""Fixtures for the real-exchange path: the loopback emulator and real ccxt clients
built by `create_exchange` (closed at teardown)."""

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from perps_bot.config.models import ExchangeConfig
from perps_bot.exchange import create_exchange
from perps_emulator import EmulatorServer


@pytest.fixture
async def emulator() -> AsyncIterator[EmulatorServer]:
    server = EmulatorServer(seed=3)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., Any]]:
    """Build real ccxt clients with create_exchange; all are closed at teardown."""
    made: list[Any] = []

    def factory(cfg: ExchangeConfig, *, private: bool) -> Any:
        client = create_exchange(cfg, private=private)
        made.append(client)
        return client

    try:
        yield factory
    finally:
        for client in made:
            await client.close()
