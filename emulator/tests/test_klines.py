"""Klines as Binance USDM gives them: weeks open on Mondays 00:00 UTC (the epoch's weeks
on Thursdays); the other intervals on their multiples since the epoch; `startTime` and
`limit` page through them."""

from collections.abc import AsyncIterator

import pytest

from emulator.tests.http_client import Client
from perps_emulator import EmulatorServer

DAY = 86_400_000
WEEK = 7 * DAY
#: Monday 2023-11-20 00:00 UTC
MONDAY = 1_700_438_400_000
NOW = MONDAY + 2 * WEEK + 3 * DAY + 5_000  # a Thursday


@pytest.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(symbols=("ETHUSDT",), seed=3, clock=lambda: NOW) as started:
        yield started


async def test_weekly_klines_open_on_mondays(api: Client) -> None:
    status, rows = await api("GET", "/fapi/v1/klines", symbol="ETHUSDT", interval="1w", limit=3)
    assert status == 200
    assert [r[0] for r in rows] == [MONDAY, MONDAY + WEEK, MONDAY + 2 * WEEK]
    assert [r[6] for r in rows] == [MONDAY + WEEK - 1, MONDAY + 2 * WEEK - 1, MONDAY + 3 * WEEK - 1]
    status, rows = await api("GET", "/fapi/v1/klines", symbol="ETHUSDT", interval="1w",
                             startTime=MONDAY - DAY, limit=2)  # fmt: skip
    assert [r[0] for r in rows] == [MONDAY - WEEK, MONDAY]


async def test_start_time_and_limit_page_through_the_klines(api: Client) -> None:
    status, rows = await api("GET", "/fapi/v1/klines", symbol="ETHUSDT", interval="1d",
                             startTime=MONDAY, limit=2)  # fmt: skip
    assert status == 200
    assert [r[0] for r in rows] == [MONDAY, MONDAY + DAY]
    _, rest = await api("GET", "/fapi/v1/klines", symbol="ETHUSDT", interval="1d",
                        startTime=MONDAY + 2 * DAY, limit=1000)  # fmt: skip
    assert [r[0] for r in rest] == [MONDAY + i * DAY for i in range(2, 18)]  # to the open one
