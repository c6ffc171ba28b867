"""Fixtures of the emulator's own tests. A test module defines ``server`` (the
EmulatorServer it needs, started); ``api`` signs requests to it."""

from collections.abc import AsyncIterator

import aiohttp
import pytest

from emulator.tests.http_client import Client
from perps_emulator import EmulatorServer


@pytest.fixture
async def api(server: EmulatorServer) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession(trust_env=False) as session:
        yield Client(server, session)
