"""Order rules, matching and accounting of the emulator, over raw HTTP (to send what
ccxt's own rounding would never send) and through its state."""

from collections.abc import AsyncIterator

import pytest

from emulator.tests.http_client import Client
from perps_emulator import EmulatorServer


@pytest.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    emulator = EmulatorServer(seed=3, initial_balance=10_000.0)
    await emulator.start()
    yield emulator
    await emulator.stop()
    assert emulator.errors == []


MARKET_BUY = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET"}
MARKET_SELL = {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET"}


async def test_filters_are_enforced(api: Client) -> None:
    order = "/fapi/v1/order"
    assert await api.error_code("POST", order, **MARKET_BUY, quantity="0.0015") == -1111
    assert await api.error_code("POST", order, **MARKET_BUY, quantity="0") == -4003
    assert await api.error_code("POST", order, **MARKET_BUY, quantity="500") == -4005
    assert await api.error_code("POST", order, **MARKET_BUY, quantity="abc") == -1100
    assert await api.error_code("POST", order, **MARKET_BUY) == -1102
    assert (
        await api.error_code("POST", order, **{**MARKET_BUY, "symbol": "NOPEUSDT"}, quantity="1")
        == -1121
    )
    limit = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01"}
    assert (
        await api.error_code("POST", order, **limit, price="59000.05", timeInForce="GTC") == -4014
    )
    assert await api.error_code("POST", order, **limit, price="59000") == -1102  # no TIF
    assert await api.error_code("POST", order, **limit, price="59000", timeInForce="XYZ") == -1115
    assert await api.error_code("POST", order, **MARKET_BUY, quantity="0.001") == -4164
    assert (
        await api.error_code("POST", order, **{**MARKET_BUY, "type": "BOGUS"}, quantity="0.01")
        == -1116
    )
    assert (  # conditional types go to the algo order endpoints (test_emulator_algo.py)
        await api.error_code(
            "POST", order, **{**MARKET_BUY, "type": "STOP_MARKET"}, quantity="0.01"
        )
        == -4120
    )


async def test_a_market_orders_notional_is_counted_at_the_mark(
    api: Client, server: EmulatorServer
) -> None:
    """Binance's MIN_NOTIONAL: "Since MARKET orders have no price, the mark price is
    used". A buy of 120 USDT at the book is 90 at a mark of 45000: refused; a sell of
    exactly 100 at the mark (99.9994 at the bid it walks) is taken."""
    order = "/fapi/v1/order"
    server.set_mark("BTCUSDT", 45_000.0)
    assert await api.error_code("POST", order, **MARKET_BUY, quantity="0.002") == -4164
    server.set_price("BTCUSDT", 50_000.0)  # mark = last again
    sold = await api.ok("POST", order, **MARKET_SELL, quantity="0.002")
    assert sold["status"] == "FILLED" and float(sold["avgPrice"]) < 50_000.0


async def test_a_limit_price_outside_the_band_around_the_mark_is_refused(
    api: Client, server: EmulatorServer
) -> None:
    """Binance's PERCENT_PRICE (multiplierUp 1.05, multiplierDown 0.95, around the mark):
    a buy above mark * 1.05 is -4016, a sell below mark * 0.95 is -4024; a buy far below
    or a sell far above is taken (it rests)."""
    order = "/fapi/v1/order"
    server.set_mark("BTCUSDT", 50_000.0)  # last 60000: a buy at 55000 is above 52500
    limit = {"symbol": "BTCUSDT", "type": "LIMIT", "quantity": "0.01", "timeInForce": "GTC"}
    assert await api.error_code("POST", order, **limit, side="BUY", price="52500.1") == -4016
    assert await api.error_code("POST", order, **limit, side="SELL", price="47499.9") == -4024
    assert (await api.ok("POST", order, **limit, side="BUY", price="52500"))["status"] == "NEW"
    rests = await api.ok("POST", order, **limit, side="SELL", price="70000")
    assert rests["status"] == "NEW"


async def test_market_order_walks_the_book(api: Client, server: EmulatorServer) -> None:
    depth = await api.ok("GET", "/fapi/v1/depth", symbol="BTCUSDT", limit=5)
    asks = [(float(p), float(q)) for p, q in depth["asks"]]
    qty = round(asks[0][1] + asks[1][1] / 2, 3)  # the whole first level and half the next
    expected = (asks[0][0] * asks[0][1] + asks[1][0] * (qty - asks[0][1])) / qty
    server.state.balances["USDT"] = 1_000_000.0
    body = await api.ok("POST", "/fapi/v1/order", **MARKET_BUY, quantity=f"{qty:.3f}")
    assert body["status"] == "FILLED"
    assert float(body["avgPrice"]) == pytest.approx(expected)
    assert float(body["avgPrice"]) > asks[0][0]
    trades = await api.ok("GET", "/fapi/v1/userTrades", symbol="BTCUSDT", orderId=body["orderId"])
    assert [float(t["price"]) for t in trades] == [asks[0][0], asks[1][0]]
    assert all(t["maker"] is False for t in trades)


async def test_round_trip_realizes_pnl_and_pays_fees(api: Client, server: EmulatorServer) -> None:
    buy = await api.ok("POST", "/fapi/v1/order", **MARKET_BUY, quantity="0.010")
    server.set_price("BTCUSDT", 61_000.0)
    sell = await api.ok("POST", "/fapi/v1/order", **MARKET_SELL, quantity="0.010")
    buy_px, sell_px = float(buy["avgPrice"]), float(sell["avgPrice"])
    realized = (sell_px - buy_px) * 0.01
    fees = 0.0005 * 0.01 * (buy_px + sell_px)
    assert server.state.positions["BTCUSDT"].amount == 0.0
    assert server.state.balances["USDT"] == pytest.approx(10_000.0 + realized - fees)
    trades = await api.ok("GET", "/fapi/v1/userTrades", symbol="BTCUSDT")
    assert float(trades[-1]["realizedPnl"]) == pytest.approx(realized)
    income = await api.ok("GET", "/fapi/v1/income", incomeType="REALIZED_PNL")
    assert [float(i["income"]) for i in income] == pytest.approx([realized])


async def test_position_flips_through_zero(api: Client, server: EmulatorServer) -> None:
    await api.ok("POST", "/fapi/v1/order", **MARKET_BUY, quantity="0.010")
    sell = await api.ok("POST", "/fapi/v1/order", **MARKET_SELL, quantity="0.030")
    position = server.state.positions["BTCUSDT"]
    assert position.amount == pytest.approx(-0.02)
    assert position.entry_price == pytest.approx(float(sell["avgPrice"]), rel=1e-4)
    rows = await api.ok("GET", "/fapi/v3/positionRisk")
    assert [(r["symbol"], r["positionAmt"], r["positionSide"]) for r in rows] == [
        ("BTCUSDT", "-0.020", "BOTH")
    ]
    v2 = await api.ok("GET", "/fapi/v2/positionRisk")
    assert {r["symbol"] for r in v2} == {"BTCUSDT", "ETHUSDT"}  # v2 lists flat symbols too
    assert {r["leverage"] for r in v2} == {"20"}


async def test_reduce_only_rules(api: Client, server: EmulatorServer) -> None:
    order = "/fapi/v1/order"
    assert (
        await api.error_code("POST", order, **MARKET_SELL, quantity="0.01", reduceOnly=True)
        == -2022
    )
    await api.ok("POST", order, **MARKET_BUY, quantity="0.010")
    assert (
        await api.error_code("POST", order, **MARKET_BUY, quantity="0.01", reduceOnly=True) == -2022
    )  # would add to the long
    # reduce-only below the minimum notional is allowed (as on Binance)
    small = await api.ok("POST", order, **MARKET_SELL, quantity="0.001", reduceOnly=True)
    assert small["status"] == "FILLED"
    # larger than the position: only the position is closed, the rest expires
    big = await api.ok("POST", order, **MARKET_SELL, quantity="0.050", reduceOnly=True)
    assert (big["status"], big["executedQty"], big["origQty"]) == ("EXPIRED", "0.009", "0.050")
    assert server.state.positions["BTCUSDT"].amount == 0.0


async def test_resting_reduce_only_expires_when_position_is_gone(
    api: Client, server: EmulatorServer
) -> None:
    await api.ok("POST", "/fapi/v1/order", **MARKET_BUY, quantity="0.010")
    tp = await api.ok(
        "POST",
        "/fapi/v1/order",
        symbol="BTCUSDT",
        side="SELL",
        type="LIMIT",
        quantity="0.010",
        price="62000",
        timeInForce="GTC",
        reduceOnly=True,
    )
    await api.ok("POST", "/fapi/v1/order", **MARKET_SELL, quantity="0.010")
    server.set_price("BTCUSDT", 62_500.0)
    assert server.state.orders[tp["orderId"]].status == "EXPIRED"
    assert server.state.positions["BTCUSDT"].amount == 0.0


async def test_margin_check_uses_leverage(api: Client, server: EmulatorServer) -> None:
    order = "/fapi/v1/order"
    # 10k USDT at 20x: 3 BTC (180k notional) needs 9k margin and fits; 4 BTC does not
    assert await api.error_code("POST", order, **MARKET_BUY, quantity="4") == -2019
    await api.ok("POST", "/fapi/v1/leverage", symbol="BTCUSDT", leverage=2)
    assert await api.error_code("POST", order, **MARKET_BUY, quantity="0.4") == -2019
    body = await api.ok("POST", order, **MARKET_BUY, quantity="0.3")
    assert body["status"] == "FILLED"
    # closing needs no margin even when nothing is available
    server.state.balances["USDT"] = 10.0
    assert (await api.ok("POST", order, **MARKET_SELL, quantity="0.3"))["status"] == "FILLED"
    assert (
        await api.error_code("POST", "/fapi/v1/leverage", symbol="BTCUSDT", leverage=200) == -4028
    )


async def test_open_order_margin_counts(api: Client) -> None:
    # 5 resting bids of 1 BTC at 55k, 20x: 2750 USDT each -> the 4th does not fit
    params = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "quantity": "1",
        "price": "55000",
        "timeInForce": "GTC",
    }
    for _ in range(3):
        await api.ok("POST", "/fapi/v1/order", **params)
    assert await api.error_code("POST", "/fapi/v1/order", **params) == -2019
    account = await api.ok("GET", "/fapi/v3/account")
    assert float(account["totalOpenOrderInitialMargin"]) == pytest.approx(3 * 2750.0)
    assert float(account["availableBalance"]) == pytest.approx(10_000.0 - 3 * 2750.0)


async def test_limit_orders_cross_rest_and_fill(api: Client, server: EmulatorServer) -> None:
    ask = server.markets["BTCUSDT"].best_ask
    crossing = await api.ok(
        "POST",
        "/fapi/v1/order",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        quantity="0.010",
        price=f"{ask + 100:.1f}",
        timeInForce="GTC",
    )
    assert crossing["status"] == "FILLED" and float(crossing["avgPrice"]) == ask  # taker
    status, body = await api.order(
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        quantity="0.010",
        price=f"{ask:.1f}",
        timeInForce="GTX",
    )
    assert (status, body["code"]) == (400, -5022)  # post-only would take
    resting = await api.ok(
        "POST",
        "/fapi/v1/order",
        symbol="BTCUSDT",
        side="SELL",
        type="LIMIT",
        quantity="0.005",
        price="60500",
        timeInForce="GTC",
    )
    assert resting["status"] == "NEW"
    opened = await api.ok("GET", "/fapi/v1/openOrders", symbol="BTCUSDT")
    assert [o["orderId"] for o in opened] == [resting["orderId"]]
    server.set_price("BTCUSDT", 60_600.0)
    filled = await api.ok("GET", "/fapi/v1/order", symbol="BTCUSDT", orderId=resting["orderId"])
    assert (filled["status"], filled["executedQty"], filled["avgPrice"]) == (
        "FILLED",
        "0.005",
        "60500.00000000",
    )
    trades = await api.ok(
        "GET", "/fapi/v1/userTrades", symbol="BTCUSDT", orderId=resting["orderId"]
    )
    assert trades[0]["maker"] is True
    assert float(trades[0]["commission"]) == pytest.approx(0.0002 * 0.005 * 60_500.0)


async def test_ioc_and_fok(api: Client, server: EmulatorServer) -> None:
    ask = server.markets["BTCUSDT"].best_ask
    level = server.markets["BTCUSDT"].level_qty(0)
    base = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "price": f"{ask:.1f}"}
    server.state.balances["USDT"] = 1_000_000.0
    ioc = await api.ok(
        "POST", "/fapi/v1/order", **base, quantity=f"{level + 0.5:.3f}", timeInForce="IOC"
    )
    assert (ioc["status"], float(ioc["executedQty"])) == ("EXPIRED", level)
    fok = await api.ok(
        "POST", "/fapi/v1/order", **base, quantity=f"{level + 0.5:.3f}", timeInForce="FOK"
    )
    assert (fok["status"], fok["executedQty"]) == ("EXPIRED", "0.000")


async def test_client_order_ids(api: Client, server: EmulatorServer) -> None:
    params = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "quantity": "0.01",
        "price": "55000",
        "timeInForce": "GTC",
        "newClientOrderId": "cid-1",
    }
    first = await api.ok("POST", "/fapi/v1/order", **params)
    assert await api.error_code("POST", "/fapi/v1/order", **params) == -4116
    by_cid = await api.ok("GET", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="cid-1")
    assert by_cid["orderId"] == first["orderId"]
    canceled = await api.ok("DELETE", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="cid-1")
    assert canceled["status"] == "CANCELED"
    assert (
        await api.error_code("DELETE", "/fapi/v1/order", symbol="BTCUSDT", orderId=first["orderId"])
        == -2011
    )
    # unique among OPEN orders only (like Binance): reuse after cancel is accepted
    second = await api.ok("POST", "/fapi/v1/order", **params)
    assert second["orderId"] != first["orderId"]
    assert server.state.orders_by_client_id["cid-1"].order_id == second["orderId"]
    assert (
        await api.error_code("GET", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="nope")
        == -2013
    )
    assert (
        await api.error_code("POST", "/fapi/v1/order", **{**params, "newClientOrderId": "bad id!"})
        == -4015
    )
    generated = await api.ok("POST", "/fapi/v1/order", **MARKET_BUY, quantity="0.01")
    assert generated["clientOrderId"]
    body = await api.ok("DELETE", "/fapi/v1/allOpenOrders", symbol="BTCUSDT")
    assert body["code"] == 200 and server.state.open_orders == {}


async def test_margin_type_and_position_mode(api: Client, server: EmulatorServer) -> None:
    assert (
        await api.error_code("POST", "/fapi/v1/marginType", symbol="BTCUSDT", marginType="CROSSED")
        == -4046
    )
    await api.ok("POST", "/fapi/v1/marginType", symbol="BTCUSDT", marginType="ISOLATED")
    assert server.state.margin_type["BTCUSDT"] == "ISOLATED"
    await api.ok("POST", "/fapi/v1/order", **MARKET_BUY, quantity="0.01")
    assert (
        await api.error_code("POST", "/fapi/v1/marginType", symbol="BTCUSDT", marginType="CROSSED")
        == -4048
    )
    assert (await api.ok("GET", "/fapi/v1/positionSide/dual")) == {"dualSidePosition": False}
    assert (
        await api.error_code("POST", "/fapi/v1/positionSide/dual", dualSidePosition=True) == -4059
    )


async def test_funding_settlement_charges_longs(api: Client, server: EmulatorServer) -> None:
    await api.ok("POST", "/fapi/v1/order", **MARKET_BUY, quantity="0.010")
    wallet = server.state.balances["USDT"]
    market = server.markets["BTCUSDT"]
    expected = -0.01 * market.mark * market.funding_rate
    server.settle_funding()
    assert server.state.balances["USDT"] == pytest.approx(wallet + expected)
    income = await api.ok("GET", "/fapi/v1/income", incomeType="FUNDING_FEE")
    assert [float(i["income"]) for i in income] == pytest.approx([expected], abs=1e-8)
    history = await api.ok("GET", "/fapi/v1/fundingRate", symbol="BTCUSDT")
    assert len(history) == 1 and float(history[0]["fundingRate"]) == pytest.approx(
        market.funding_rate
    )


async def test_signed_requests_outside_the_receive_window_are_refused(
    api: Client, server: EmulatorServer
) -> None:
    """Binance's -1021: a request processed recvWindow after its timestamp (or stamped
    more than a second ahead) never executes; inside the window it does."""
    now = server.clock()
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.002"}
    assert await api.error_code("POST", "/fapi/v1/order", timestamp=now - 6_000, **order) == -1021
    late = dict(timestamp=now - 3_000, recvWindow=2_000)
    assert await api.error_code("POST", "/fapi/v1/order", **late, **order) == -1021
    assert await api.error_code("POST", "/fapi/v1/order", timestamp=now + 5_000, **order) == -1021
    assert server.state.orders == {}
    await api.ok("POST", "/fapi/v1/order", timestamp=now - 3_000, recvWindow=10_000, **order)
    assert len(server.state.orders) == 1
