"""Liquidation over HTTP: the control endpoints that drive it, and the Binance routes
that report it (positionRisk, allOrders, forceOrders, income)."""

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from emulator.tests.http_client import Client
from perps_emulator import EmulatorServer

NOW = 1_700_000_000_000


@pytest.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    emulator = EmulatorServer(seed=3, initial_balance=10_000.0, clock=lambda: NOW)
    await emulator.start()
    yield emulator
    await emulator.stop()
    assert emulator.errors == []


async def control(server: EmulatorServer, method: str, name: str, body: Any = None) -> Any:
    async with (
        aiohttp.ClientSession(trust_env=False) as session,
        session.request(method, f"{server.base_url}/_emulator/{name}", json=body) as response,
    ):
        return response.status, await response.json()


async def open_isolated_long(api: Client) -> dict[str, Any]:
    await api.ok("POST", "/fapi/v1/marginType", symbol="BTCUSDT", marginType="ISOLATED")
    await api.ok("POST", "/fapi/v1/leverage", symbol="BTCUSDT", leverage=20)
    await api.ok(
        "POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.100"
    )
    rows = await api.ok("GET", "/fapi/v2/positionRisk", symbol="BTCUSDT")
    row: dict[str, Any] = rows[0]
    return row


async def test_position_risk_reports_the_liquidation_price_and_isolated_wallet(
    api: Client, server: EmulatorServer
) -> None:
    v2 = await open_isolated_long(api)
    (v3,) = await api.ok("GET", "/fapi/v3/positionRisk", symbol="BTCUSDT")
    account = server.engine.account
    pos = server.state.positions["BTCUSDT"]
    assert float(v2["liquidationPrice"]) == pytest.approx(account.liquidation_price("BTCUSDT"))
    assert v3["liquidationPrice"] == v2["liquidationPrice"]
    assert v2["marginType"] == "isolated"
    assert float(v2["isolatedWallet"]) == pytest.approx(0.1 * pos.entry_price / 20)
    upnl = float(v2["unRealizedProfit"])
    assert float(v3["isolatedMargin"]) == pytest.approx(float(v2["isolatedWallet"]) + upnl)
    (eth,) = await api.ok("GET", "/fapi/v2/positionRisk", symbol="ETHUSDT")
    assert eth["liquidationPrice"] == "0"  # no position
    balance = (await api.ok("GET", "/fapi/v2/balance"))[0]
    cross = float(balance["balance"]) - float(v2["isolatedWallet"])
    assert float(balance["crossWalletBalance"]) == pytest.approx(cross)


async def test_control_endpoints_switch_it_on_and_a_price_past_it_liquidates(
    api: Client, server: EmulatorServer
) -> None:
    row = await open_isolated_long(api)
    price = float(row["liquidationPrice"])
    assert await control(server, "POST", "price", {"symbol": "BTCUSDT", "price": price - 10})
    assert server.state.positions["BTCUSDT"].amount == 0.1  # off: nothing happens
    assert await control(server, "POST", "price", {"symbol": "BTCUSDT", "price": price + 500})
    status, body = await control(server, "POST", "liquidation", {"enabled": True})
    assert (status, body) == (200, {"ok": True, "liquidation": True})
    status, body = await control(server, "POST", "mark", {"symbol": "BTCUSDT", "mark": 50_000})
    assert (status, body["mark"]) == (200, 50_000.0)
    assert await api.ok("GET", "/fapi/v3/positionRisk") == []
    (order,) = await api.ok("GET", "/fapi/v1/forceOrders")
    assert order["clientOrderId"].startswith(f"autoclose-{NOW}")
    assert float(order["avgPrice"]) == pytest.approx(price, abs=0.05)  # crossed: at LP
    assert (order["status"], order["type"], order["side"], order["executedQty"]) == (
        "FILLED",
        "MARKET",
        "SELL",
        "0.100",
    )
    assert order in await api.ok("GET", "/fapi/v1/allOrders", symbol="BTCUSDT")
    kinds = {
        row["incomeType"]
        for row in await api.ok("GET", "/fapi/v1/income", symbol="BTCUSDT")
        if row["time"] == order["time"]
    }
    assert {"REALIZED_PNL", "COMMISSION", "INSURANCE_CLEAR"} <= kinds
    state = (await control(server, "GET", "state"))[1]
    assert state["liquidation"] is True and state["liquidation_prices"]["BTCUSDT"] == 0.0


async def test_force_orders_filters(api: Client, server: EmulatorServer) -> None:
    server.liquidation = True
    await open_isolated_long(api)
    server.set_price("BTCUSDT", 40_000.0)
    route = "/fapi/v1/forceOrders"
    assert len(await api.ok("GET", route, symbol="BTCUSDT", autoCloseType="LIQUIDATION")) == 1
    assert await api.ok("GET", route, autoCloseType="ADL") == []
    assert await api.ok("GET", route, symbol="ETHUSDT") == []
    assert await api.ok("GET", route, startTime=NOW + 1) == []
    assert len(await api.ok("GET", route, endTime=NOW, limit=1)) == 1
    assert await api.error_code("GET", route, autoCloseType="NOPE") == -1130
    assert await api.error_code("GET", route, symbol="NOPEUSDT") == -1121
    status, _ = await api("GET", route, symbol="BTCUSDT", signature="")  # still signed
    assert status == 200


async def test_bad_control_bodies_are_400(server: EmulatorServer) -> None:
    status, body = await control(server, "POST", "liquidation", {"enabled": "yes"})
    assert status == 400 and "enabled" in body["error"]
    status, _ = await control(server, "POST", "mark", {"symbol": "BTCUSDT", "mark": -1})
    assert status == 400
    status, _ = await control(server, "POST", "mark", {"symbol": "NOPEUSDT", "mark": 1})
    assert status == 400
    assert not server.liquidation
