"""The account trade list (`GET /fapi/v1/userTrades`) keeps Binance's limits (its docs,
Account Trade List): at most 1000 trades a page (500 by default), one window of at most
7 days (startTime alone: the 7 days after it; nothing: the last 7 days), `fromId` never
with a time, and only the past 6 months. Measured before: a startTime 20 days back
answered every trade since (a client that forgot to page passed here and lost trades on
Binance), and a startTime page answered the newest trades of the range, not the first."""

from collections.abc import AsyncIterator

import pytest

from emulator.tests.http_client import Client
from perps_emulator import EmulatorServer

DAY_MS = 86_400_000
T0 = 1_700_000_000_000
TRADES = "/fapi/v1/userTrades"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def server(clock: Clock) -> AsyncIterator[EmulatorServer]:
    emulator = EmulatorServer(seed=3, initial_balance=1_000_000.0, clock=clock)
    await emulator.start()
    yield emulator
    await emulator.stop()
    assert emulator.errors == []


def trade_daily(server: EmulatorServer, clock: Clock, days: int) -> list[int]:
    """One market buy of 0.002 BTC a day for `days` days from T0; their trade times."""
    for day in range(days):
        clock.now = T0 + day * DAY_MS
        server.engine.place_order(
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.002"}
        )
    return [t.time for t in server.state.trades]


async def test_one_window_is_seven_days_at_most(
    api: Client, server: EmulatorServer, clock: Clock
) -> None:
    times = trade_daily(server, clock, 20)
    clock.now = T0 + 20 * DAY_MS
    since_start = await api.ok("GET", TRADES, symbol="BTCUSDT", startTime=T0)
    assert [t["time"] for t in since_start] == times[:8]  # T0 .. T0 + 7 days
    last_week = await api.ok("GET", TRADES, symbol="BTCUSDT")
    assert [t["time"] for t in last_week] == times[13:]
    too_long = {"startTime": T0, "endTime": T0 + 7 * DAY_MS + 1}
    assert await api.error_code("GET", TRADES, symbol="BTCUSDT", **too_long) == -1127
    both = {"fromId": 1, "startTime": T0}
    assert await api.error_code("GET", TRADES, symbol="BTCUSDT", **both) == -1128
    by_id = await api.ok("GET", TRADES, symbol="BTCUSDT", fromId=since_start[3]["id"], limit=5)
    assert [t["time"] for t in by_id] == times[3:8]


async def test_a_page_from_a_start_is_its_first_trades_and_six_months_are_kept(
    api: Client, server: EmulatorServer, clock: Clock
) -> None:
    times = trade_daily(server, clock, 3)
    clock.now = T0 + 2 * DAY_MS
    page = await api.ok("GET", TRADES, symbol="BTCUSDT", startTime=T0, limit=2)
    assert [t["time"] for t in page] == times[:2]
    assert len(await api.ok("GET", TRADES, symbol="BTCUSDT", fromId=0, limit=5000)) == 3
    clock.now = T0 + 181 * DAY_MS  # the first trade is older than 6 months
    assert len(await api.ok("GET", TRADES, symbol="BTCUSDT", fromId=0)) == 2
