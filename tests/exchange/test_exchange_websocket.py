"""ccxt.pro (websocket) client from create_exchange(websocket=True) against the
emulator's streams: tickers follow price moves and the diff-depth stream keeps ccxt's
local book identical to the REST book (no crossed or stale levels)."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from perps_bot.config.models import ExchangeConfig
from perps_bot.exchange.client import create_exchange
from perps_emulator import EmulatorServer

BTC = "BTC/USDT:USDT"
WAIT_S = 5.0  # upper bound only: every await below resolves as soon as the event arrives


@pytest.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    emulator = EmulatorServer(seed=4)
    await emulator.start()
    yield emulator
    await emulator.stop()
    assert emulator.errors == []


@pytest.fixture
async def ws_client(server: EmulatorServer) -> AsyncIterator[Any]:
    client = create_exchange(
        ExchangeConfig(base_url=server.base_url), private=False, websocket=True
    )
    await client.load_markets()
    yield client
    await client.close()


async def test_watch_ticker_and_mark_price_follow_the_price(
    ws_client: Any, server: EmulatorServer
) -> None:
    first = await asyncio.wait_for(ws_client.watch_ticker(BTC), WAIT_S)
    assert first["last"] == 60_000.0
    server.set_price("BTCUSDT", 61_000.0)
    moved = await asyncio.wait_for(ws_client.watch_ticker(BTC), WAIT_S)
    assert moved["last"] == 61_000.0
    mark = await asyncio.wait_for(ws_client.watch_mark_price(BTC), WAIT_S)
    assert mark["markPrice"] == 61_000.0
    assert server.private_calls() == []


async def test_watch_order_book_stays_equal_to_rest_book(
    ws_client: Any, server: EmulatorServer
) -> None:
    book = await asyncio.wait_for(ws_client.watch_order_book(BTC), WAIT_S)
    assert book["nonce"] == server.markets["BTCUSDT"].update_id
    target = None
    for _ in range(5):
        server.step(3)
        target = server.markets["BTCUSDT"].update_id
        while book["nonce"] < target:
            book = await asyncio.wait_for(ws_client.watch_order_book(BTC), WAIT_S)
            assert book["bids"][0][0] < book["asks"][0][0]
    assert book["nonce"] == target
    rest = await ws_client.fetch_order_book(BTC, 1000)
    assert rest["nonce"] == target
    assert book["bids"][:1000] == rest["bids"] and book["asks"][:1000] == rest["asks"]
