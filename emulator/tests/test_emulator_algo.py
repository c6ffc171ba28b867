"""Conditional STOP_MARKET / TAKE_PROFIT_MARKET orders on the algo order endpoints
(algo.py), over raw HTTP and through the emulator's state."""

from collections.abc import AsyncIterator

import pytest

from emulator.tests.http_client import Client
from perps_emulator import EmulatorServer

ALGO = "/fapi/v1/algoOrder"
BUY = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010"}


@pytest.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    emulator = EmulatorServer(seed=3, initial_balance=10_000.0, prices={"BTCUSDT": 60_000.0})
    await emulator.start()
    yield emulator
    await emulator.stop()
    assert emulator.errors == []


def conditional(kind: str, trigger: str, **extra: str) -> dict[str, str]:
    return {"symbol": "BTCUSDT", "side": "SELL", "type": kind, "algoType": "CONDITIONAL",
            "triggerPrice": trigger, "quantity": "0.010", "reduceOnly": "true",
            **extra}  # fmt: skip


async def test_placement_rules(api: Client) -> None:
    assert await api.error_code("POST", "/fapi/v1/order", **conditional("STOP_MARKET", "59000")) \
        == -4120  # fmt: skip  # the classic endpoint refuses conditional types
    assert await api.error_code("POST", ALGO, **conditional("STOP_MARKET", "61000")) == -2021
    assert await api.error_code("POST", ALGO, **conditional("TAKE_PROFIT_MARKET", "59000")) \
        == -2021  # fmt: skip
    assert await api.error_code("POST", ALGO, **conditional("STOP_MARKET", "59000.05")) == -4014
    assert await api.error_code("POST", ALGO, **conditional("STOP", "59000")) == -1116
    no_algo_type = {k: v for k, v in conditional("STOP_MARKET", "59000").items() if k != "algoType"}
    assert await api.error_code("POST", ALGO, **no_algo_type) == -1102
    bad_working = conditional("STOP_MARKET", "59000", workingType="INDEX")
    assert await api.error_code("POST", ALGO, **bad_working) == -1130
    # a stop becomes a market order: MARKET_LOT_SIZE (120 BTC) holds, not LOT_SIZE (1000)
    above = {"quantity": "120.001"}
    assert await api.error_code("POST", ALGO, **conditional("STOP_MARKET", "59000") | above) \
        == -4005  # fmt: skip
    assert await api.error_code("POST", ALGO, **conditional("TAKE_PROFIT_MARKET", "62000")
                                | {"quantity": "500"}) == -4005  # fmt: skip
    closing = conditional("STOP_MARKET", "59000", closePosition="true")
    assert await api.error_code("POST", ALGO, **closing) == -1106  # quantity with closePosition
    first = await api.ok("POST", ALGO, **conditional("STOP_MARKET", "59000", clientAlgoId="s1"))
    assert (first["algoStatus"], first["orderType"], first["triggerPrice"]) == (
        "NEW", "STOP_MARKET", "59000.0")  # fmt: skip
    assert await api.error_code(
        "POST", ALGO, **conditional("STOP_MARKET", "58000", clientAlgoId="s1")
    ) == -20132  # fmt: skip


async def test_stop_triggers_on_last_price_and_fills_as_a_reduce_only_market_order(
    api: Client, server: EmulatorServer
) -> None:
    await api.ok("POST", "/fapi/v1/order", **BUY)
    stop = await api.ok("POST", ALGO, **conditional("STOP_MARKET", "59000", clientAlgoId="st"))
    tp = await api.ok("POST", ALGO, **conditional("TAKE_PROFIT_MARKET", "62000",
                                                  clientAlgoId="tp"))  # fmt: skip
    listed = await api.ok("GET", "/fapi/v1/openAlgoOrders", symbol="BTCUSDT")
    assert [o["clientAlgoId"] for o in listed] == ["st", "tp"]
    assert await api.ok("GET", "/fapi/v1/openOrders", symbol="BTCUSDT") == []
    server.set_price("BTCUSDT", 59_500.0)
    assert server.state.positions["BTCUSDT"].amount == pytest.approx(0.01)  # not reached
    server.set_price("BTCUSDT", 58_900.0)
    found = await api.ok("GET", ALGO, algoId=stop["algoId"])
    assert found["algoStatus"] == "FINISHED" and found["actualOrderId"]
    child = await api.ok("GET", "/fapi/v1/order", symbol="BTCUSDT", orderId=found["actualOrderId"])
    assert (child["status"], child["type"], child["origType"], child["reduceOnly"]) == (
        "FILLED", "MARKET", "STOP_MARKET", True)  # fmt: skip
    assert child["clientOrderId"] == "st" and float(child["stopPrice"]) == 59_000.0
    assert float(found["actualPrice"]) == pytest.approx(float(child["avgPrice"]))
    assert server.state.positions["BTCUSDT"].amount == 0.0
    trades = await api.ok("GET", "/fapi/v1/userTrades", symbol="BTCUSDT")
    assert trades[-1]["orderId"] == int(found["actualOrderId"])
    # the sibling still rests (the exchange knows no OCO); cancelling it:
    gone = await api.ok("DELETE", ALGO, symbol="BTCUSDT", algoId=tp["algoId"])
    assert (gone["code"], gone["clientAlgoId"]) == ("200", "tp")
    assert (await api.ok("GET", ALGO, clientAlgoId="tp"))["algoStatus"] == "CANCELED"
    assert await api.error_code("DELETE", ALGO, symbol="BTCUSDT", algoId=tp["algoId"]) == -2011
    assert await api.error_code("GET", ALGO, clientAlgoId="nope") == -2013
    every = await api.ok("GET", "/fapi/v1/allAlgoOrders", symbol="BTCUSDT")
    assert [o["algoStatus"] for o in every] == ["FINISHED", "CANCELED"]


async def test_mark_price_working_type_and_close_position(
    api: Client, server: EmulatorServer
) -> None:
    await api.ok("POST", "/fapi/v1/order", **BUY)
    by_mark = conditional("TAKE_PROFIT_MARKET", "61000", workingType="MARK_PRICE",
                          closePosition="true")  # fmt: skip
    del by_mark["quantity"], by_mark["reduceOnly"]
    tp = await api.ok("POST", ALGO, **by_mark)
    by_last = await api.ok("POST", ALGO, **conditional("TAKE_PROFIT_MARKET", "61000"))
    server.set_mark("BTCUSDT", 61_100.0)  # the last price stays at 60k
    assert server.state.algo_orders[tp["algoId"]].status == "FINISHED"
    assert server.state.algo_orders[by_last["algoId"]].status == "NEW"
    assert server.state.positions["BTCUSDT"].amount == 0.0  # closePosition closed it all
    server.set_price("BTCUSDT", 61_500.0)  # triggers the other: reduce-only, nothing left
    left = await api.ok("GET", ALGO, algoId=by_last["algoId"])
    child = server.state.orders[int(left["actualOrderId"])]
    assert (left["algoStatus"], child.status, child.executed_qty) == ("FINISHED", "EXPIRED", 0.0)
    assert server.state.positions["BTCUSDT"].amount == 0.0


async def test_random_walk_steps_trigger_too(api: Client, server: EmulatorServer) -> None:
    await api.ok("POST", "/fapi/v1/order", **BUY)
    price = server.price("BTCUSDT")
    await api.ok("POST", ALGO, **conditional("STOP_MARKET", f"{price - 0.1:.1f}"))
    await api.ok("POST", ALGO, **conditional("TAKE_PROFIT_MARKET", f"{price + 0.1:.1f}"))
    server.step(50)
    assert server.state.positions["BTCUSDT"].amount == 0.0
    await api.ok("DELETE", "/fapi/v1/algoOpenOrders", symbol="BTCUSDT")
    assert await api.ok("GET", "/fapi/v1/openAlgoOrders") == []


async def test_open_conditional_orders_per_symbol_are_capped_by_max_num_algo_orders(
    api: Client,
) -> None:
    """exchangeInfo says MAX_NUM_ALGO_ORDERS 10, as Binance USDM does; the eleventh open
    conditional order of a symbol was accepted all the same. Binance refuses it (-4045
    "Reach max stop order limit."); a finished or cancelled one frees its place."""
    info = await api.ok("GET", "/fapi/v1/exchangeInfo")
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    limits = [f["limit"] for f in btc["filters"] if f["filterType"] == "MAX_NUM_ALGO_ORDERS"]
    assert limits == [10]
    for n in range(10):
        await api.ok("POST", ALGO, **conditional("STOP_MARKET", str(59_000 - n),
                                                 clientAlgoId=f"s{n}"))  # fmt: skip
    eleventh = conditional("TAKE_PROFIT_MARKET", "62000", clientAlgoId="tp")
    assert await api.error_code("POST", ALGO, **eleventh) == -4045
    await api.ok("DELETE", ALGO, symbol="BTCUSDT", clientAlgoId="s0")
    await api.ok("POST", ALGO, **eleventh)
