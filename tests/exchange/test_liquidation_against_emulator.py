"""Exchange-side liquidation as the bot's real client sees it: the ccxt client from
create_exchange against the emulator with its liquidation engine on. After the price
crosses a position's liquidation price the position is gone, the liquidation trade
and forced order are there, and the balance lost exactly the loss and the fees."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from perps_bot.config.models import ExchangeConfig
from perps_bot.exchange.client import create_exchange
from perps_emulator import EmulatorServer

BTC = "BTC/USDT:USDT"
TAKER_FEE = 0.0005  # the emulator's published taker rate (commissionRate)
CLEARANCE_FEE = 0.0125  # BTCUSDT's liquidationFee in exchangeInfo

pytestmark = pytest.mark.integration


@asynccontextmanager
async def emulated(
    *, liquidation: bool, balance: float
) -> AsyncIterator[tuple[EmulatorServer, Any]]:
    server = EmulatorServer(seed=1, initial_balance=balance, liquidation=liquidation)
    await server.start()
    cfg = ExchangeConfig(base_url=server.base_url, api_key="test-key", api_secret="test-secret")
    client = create_exchange(cfg, private=True)
    try:
        await client.load_markets()
        yield server, client
    finally:
        await client.close()
        await server.stop()
    assert server.errors == []


async def open_long(client: Any, margin_mode: str, leverage: int, amount: float) -> dict[str, Any]:
    if margin_mode == "isolated":  # cross is the default (setting it again is -4046)
        await client.set_margin_mode(margin_mode, BTC)
    await client.set_leverage(leverage, BTC)
    await client.create_order(BTC, "market", "buy", amount)
    (position,) = await client.fetch_positions([BTC])
    assert position["contracts"] == amount and position["side"] == "long"
    assert position["liquidationPrice"] > 0
    return dict(position)


async def wallet(client: Any) -> float:
    balance = await client.fetch_balance()
    return float(balance["info"]["assets"][0]["walletBalance"])


async def assert_liquidated(client: Any, amount: float, close: float) -> dict[str, Any]:
    """No position left; the liquidation is a trade and a forced order. Returns the trade."""
    assert [p for p in await client.fetch_positions([BTC]) if p["contracts"]] == []
    trade = (await client.fetch_my_trades(BTC))[-1]
    assert (trade["side"], trade["amount"], trade["price"]) == ("sell", amount, close)
    (forced,) = await client.fapiPrivateGetForceOrders({"symbol": "BTCUSDT"})
    assert forced["clientOrderId"].startswith("autoclose-")
    assert (forced["status"], forced["type"], forced["side"]) == ("FILLED", "MARKET", "SELL")
    assert str(trade["order"]) == str(forced["orderId"])
    (liquidation,) = await client.fetch_my_liquidations(BTC)
    assert liquidation["price"] == close
    return dict(trade)


async def test_isolated_long_is_liquidated_at_its_liquidation_price() -> None:
    async with emulated(liquidation=True, balance=10_000.0) as (server, client):
        position = await open_long(client, "isolated", 20, 0.1)
        entry, lp = position["entryPrice"], position["liquidationPrice"]
        margin = float(position["info"]["isolatedWallet"])
        assert margin == pytest.approx(0.1 * entry / 20)
        before = await wallet(client)
        server.set_price("BTCUSDT", lp - 300.0)  # gaps past it: still closed at LP
        close = round(lp, 1)  # BTCUSDT's tick is 0.1
        await assert_liquidated(client, 0.1, close)
        loss = 0.1 * (entry - close)
        commission = TAKER_FEE * 0.1 * close
        clearance = min(CLEARANCE_FEE * 0.1 * close, margin - loss - commission)
        assert clearance > 0
        after = await wallet(client)
        assert after == pytest.approx(before - loss - commission - clearance, abs=1e-6)
        assert after == pytest.approx(before - margin, abs=1e-6)  # the whole margin is gone
        balance = await client.fetch_balance()
        assert balance["USDT"]["total"] == pytest.approx(after)  # nothing open: margin = wallet


async def test_cross_long_is_liquidated_when_the_wallet_reaches_maintenance() -> None:
    async with emulated(liquidation=True, balance=1_000.0) as (server, client):
        position = await open_long(client, "cross", 20, 0.3)
        entry, lp = position["entryPrice"], position["liquidationPrice"]
        before = await wallet(client)
        server.set_price("BTCUSDT", lp + 50.0)
        assert (await client.fetch_positions([BTC]))[0]["contracts"] == 0.3  # not yet
        server.set_price("BTCUSDT", lp - 50.0)
        close = round(lp, 1)
        await assert_liquidated(client, 0.3, close)
        loss = 0.3 * (entry - close)
        commission = TAKER_FEE * 0.3 * close
        clearance = min(CLEARANCE_FEE * 0.3 * close, before - loss - commission)
        assert await wallet(client) == pytest.approx(
            before - loss - commission - clearance, abs=1e-6
        )
        income = await client.fapiPrivateGetIncome({"symbol": "BTCUSDT"})
        kinds = [row["incomeType"] for row in income]
        assert kinds[-3:] == ["REALIZED_PNL", "COMMISSION", "INSURANCE_CLEAR"]


async def test_with_liquidation_off_a_position_past_it_stays_open() -> None:
    async with emulated(liquidation=False, balance=10_000.0) as (server, client):
        position = await open_long(client, "isolated", 20, 0.1)
        server.set_price("BTCUSDT", position["liquidationPrice"] - 1_000.0)
        (still,) = await client.fetch_positions([BTC])
        assert still["contracts"] == 0.1
        assert await client.fapiPrivateGetForceOrders({"symbol": "BTCUSDT"}) == []
        assert len(await client.fetch_my_trades(BTC)) == 1
