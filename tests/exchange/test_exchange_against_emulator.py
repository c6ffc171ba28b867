"""The real, unmodified ccxt async client from create_exchange against the loopback
emulator: unified calls parse, faults surface as the ccxt classes the live venue
handles, and a dry-run client never reaches a private endpoint."""

from collections.abc import AsyncIterator
from typing import Any

import ccxt.async_support as ccxt_async
import pytest

from perps_bot.config.models import ExchangeConfig
from perps_bot.exchange.client import create_exchange
from perps_emulator import EmulatorServer, Fault

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


@pytest.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    emulator = EmulatorServer(host="127.0.0.1", port=0, seed=1)
    await emulator.start()
    yield emulator
    await emulator.stop()
    assert emulator.errors == []


def _client(server: EmulatorServer, *, private: bool = True, timeout_ms: int = 2000) -> Any:
    cfg = ExchangeConfig(
        base_url=server.base_url,
        api_key="test-key",
        api_secret="test-secret",
        timeout_ms=timeout_ms,
    )
    return create_exchange(cfg, private=private)


@pytest.fixture
async def ex(server: EmulatorServer) -> AsyncIterator[Any]:
    client = _client(server)
    yield client
    await client.close()


async def test_market_data_calls(ex: Any, server: EmulatorServer) -> None:
    markets = await ex.load_markets()
    assert {BTC, ETH} <= set(markets)
    btc = markets[BTC]
    assert (btc["id"], btc["linear"], btc["swap"], btc["settle"]) == ("BTCUSDT", True, True, "USDT")
    assert btc["precision"]["price"] == 0.1 and btc["precision"]["amount"] == 0.001
    assert btc["limits"]["cost"]["min"] == 100.0

    server.set_price("BTCUSDT", 65_000.0)
    ticker = await ex.fetch_ticker(BTC)
    assert ticker["last"] == 65_000.0

    book = await ex.fetch_order_book(BTC, 20)
    assert len(book["bids"]) == 20 and len(book["asks"]) == 20
    assert book["bids"][0][0] < 65_000.0 < book["asks"][0][0]
    assert [p for p, _ in book["bids"]] == sorted((p for p, _ in book["bids"]), reverse=True)
    assert [p for p, _ in book["asks"]] == sorted(p for p, _ in book["asks"])

    funding = await ex.fetch_funding_rate(BTC)
    assert funding["markPrice"] == 65_000.0
    assert funding["fundingRate"] == pytest.approx(0.0001)
    assert funding["fundingTimestamp"] % (8 * 3_600_000) == 0
    assert funding["fundingTimestamp"] > funding["timestamp"]

    candles = await ex.fetch_ohlcv(BTC, "1m", limit=5)
    assert len(candles) == 5 and candles[-1][4] == 65_000.0
    assert server.private_calls() == []


async def test_orders_positions_balance(ex: Any, server: EmulatorServer) -> None:
    await ex.load_markets()
    assert (await ex.set_leverage(10, BTC))["leverage"] == 10
    assert server.state.leverage["BTCUSDT"] == 10

    bought = await ex.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "entry-1"})
    assert (bought["status"], bought["filled"], bought["clientOrderId"]) == (
        "closed",
        0.01,
        "entry-1",
    )
    assert bought["average"] > 60_000.0  # bought at the ask

    exit_order = await ex.create_order(
        BTC, "limit", "sell", 0.01, 61_000.0, {"clientOrderId": "exit-1", "reduceOnly": True}
    )
    assert exit_order["status"] == "open" and exit_order["reduceOnly"] is True

    by_id = await ex.fetch_order(exit_order["id"], BTC)
    by_client_id = await ex.fetch_order(None, BTC, {"origClientOrderId": "exit-1"})
    assert by_id["id"] == by_client_id["id"] == exit_order["id"]

    open_orders = await ex.fetch_open_orders()
    assert [o["clientOrderId"] for o in open_orders] == ["exit-1"]

    positions = await ex.fetch_positions()
    assert len(positions) == 1
    position = positions[0]
    assert (position["symbol"], position["side"], position["contracts"]) == (BTC, "long", 0.01)
    assert position["entryPrice"] == pytest.approx(bought["average"])

    balance = await ex.fetch_balance()
    assert balance["USDT"]["total"] < 10_000.0  # taker fee paid
    assert balance["USDT"]["used"] == pytest.approx(0.01 * 60_000.0 / 10, rel=1e-3)

    trades = await ex.fetch_my_trades(BTC)
    assert [(t["order"], t["takerOrMaker"], t["amount"]) for t in trades] == [
        (bought["id"], "taker", 0.01)
    ]

    canceled = await ex.cancel_order(exit_order["id"], BTC)
    assert canceled["status"] == "canceled"
    assert await ex.fetch_open_orders(BTC) == []

    with pytest.raises(ccxt_async.OrderNotFound):
        await ex.cancel_order(exit_order["id"], BTC)
    with pytest.raises(ccxt_async.OrderNotFound):
        await ex.fetch_order("123", BTC)


async def test_resting_limit_fills_when_price_crosses(ex: Any, server: EmulatorServer) -> None:
    await ex.load_markets()
    order = await ex.create_order(BTC, "limit", "buy", 0.002, 59_000.0, {"clientOrderId": "dip"})
    server.step(3)
    assert (await ex.fetch_order(order["id"], BTC))["status"] == "open"
    server.set_price("BTCUSDT", 58_900.0)
    filled = await ex.fetch_order(order["id"], BTC)
    assert (filled["status"], filled["filled"], filled["average"]) == ("closed", 0.002, 59_000.0)
    trades = await ex.fetch_my_trades(BTC)
    assert trades[-1]["takerOrMaker"] == "maker"


async def test_exchange_rejections_map_to_ccxt_classes(ex: Any, server: EmulatorServer) -> None:
    await ex.load_markets()
    with pytest.raises(ccxt_async.InsufficientFunds):  # -2019: 2 BTC at 20x needs 6000 > ...
        await ex.create_order(BTC, "market", "buy", 5.0, None)
    with pytest.raises(ccxt_async.InvalidOrder, match="-2022"):  # reduce-only, no position
        await ex.create_order(BTC, "market", "sell", 0.01, None, {"reduceOnly": True})
    with pytest.raises(ccxt_async.InvalidOrder, match="-4164"):  # 0.001 BTC < 100 USDT
        await ex.create_order(BTC, "market", "buy", 0.001, None)
    await ex.create_order(BTC, "limit", "buy", 0.002, 59_000.0, {"clientOrderId": "same"})
    with pytest.raises(ccxt_async.InvalidOrder, match="-4116"):
        await ex.create_order(BTC, "limit", "buy", 0.002, 59_000.0, {"clientOrderId": "same"})
    assert len(server.state.open_orders) == 1


def _fault_id(fault: Fault) -> str:
    detail = fault.http_status if fault.kind in ("status", "rate_limit") else fault.code
    return f"{fault.kind}{detail if fault.kind != 'timeout' else ''}"


@pytest.mark.parametrize(
    "fault, expected",
    [
        (Fault(kind="status", status=503), ccxt_async.ExchangeNotAvailable),
        (Fault(kind="status", status=502), ccxt_async.ExchangeNotAvailable),
        (Fault(kind="status", status=500), ccxt_async.ExchangeNotAvailable),
        (Fault(kind="rate_limit"), ccxt_async.DDoSProtection),
        (Fault(kind="rate_limit", status=418), ccxt_async.DDoSProtection),
        (Fault(kind="error_code", code=-2019), ccxt_async.InsufficientFunds),
        (Fault(kind="error_code", code=-2022), ccxt_async.InvalidOrder),
        (Fault(kind="error_code", code=-4164), ccxt_async.InvalidOrder),
        (Fault(kind="error_code", code=-1001), ccxt_async.OperationFailed),
        (Fault(kind="error_code", code=-1021), ccxt_async.InvalidNonce),
        (Fault(kind="error_code", code=-2015), ccxt_async.AuthenticationError),
        (Fault(kind="timeout", delay_s=5.0), ccxt_async.RequestTimeout),
    ],
    ids=lambda v: _fault_id(v) if isinstance(v, Fault) else v.__name__,
)
async def test_injected_faults_raise_ccxt_classes(
    server: EmulatorServer, fault: Fault, expected: type[Exception]
) -> None:
    client = _client(server, timeout_ms=300)
    try:
        await client.load_markets()
        server.inject(fault)
        with pytest.raises(expected):
            await client.create_order(BTC, "market", "buy", 0.002, None)
        assert server.state.orders == {}  # a faulted request is never processed
        # the fault was consumed: the next identical call goes through
        order = await client.create_order(BTC, "market", "buy", 0.002, None)
        assert order["status"] == "closed"
    finally:
        await client.close()


async def test_rate_limit_classes_are_siblings_under_network_error(
    server: EmulatorServer,
) -> None:
    """binance.handle_errors raises DDoSProtection for HTTP 429/418; RateLimitExceeded
    appears only for the JSON code -1003 on another status. In ccxt 4.5 the two are
    SIBLINGS under NetworkError (neither subclasses the other): catch both."""
    client = _client(server)
    try:
        server.inject(
            Fault(kind="error_code", code=-1003, method="GET", path="/fapi/v1/exchangeInfo")
        )
        with pytest.raises(ccxt_async.RateLimitExceeded):
            await client.load_markets()
        assert not issubclass(ccxt_async.RateLimitExceeded, ccxt_async.DDoSProtection)
        assert issubclass(ccxt_async.RateLimitExceeded, ccxt_async.NetworkError)
        assert issubclass(ccxt_async.DDoSProtection, ccxt_async.NetworkError)
    finally:
        await client.close()


async def test_accept_then_timeout_leaves_an_order_findable_by_client_id(
    server: EmulatorServer,
) -> None:
    client = _client(server, timeout_ms=300)
    try:
        await client.load_markets()
        server.inject(Fault(kind="accept_then_timeout", delay_s=5.0))
        with pytest.raises(ccxt_async.RequestTimeout):
            await client.create_order(
                BTC, "limit", "buy", 0.002, 59_000.0, {"clientOrderId": "retry-me"}
            )
        found = await client.fetch_order(None, BTC, {"origClientOrderId": "retry-me"})
        assert (found["status"], found["clientOrderId"]) == ("open", "retry-me")
        with pytest.raises(ccxt_async.InvalidOrder, match="-4116"):  # a blind resend is refused
            await client.create_order(
                BTC, "limit", "buy", 0.002, 59_000.0, {"clientOrderId": "retry-me"}
            )
        assert len(server.state.orders) == 1
    finally:
        await client.close()


async def test_malformed_answer_is_a_transient_bad_response(server: EmulatorServer) -> None:
    """Bare ccxt returns the non-JSON text and parses it into empty fields (an order
    without id, a ticker without last, NO positions); the bot's client refuses the
    answer instead, as an OperationFailed: retried, an order's outcome looked up."""
    client = _client(server)
    try:
        await client.load_markets()
        server.inject(Fault(kind="malformed"))
        with pytest.raises(ccxt_async.BadResponse, match="200 with a body that is not JSON"):
            await client.create_order(BTC, "market", "buy", 0.002, None)
        server.inject(Fault(kind="malformed", method="GET", path="/fapi/v1/ticker/24hr"))
        with pytest.raises(ccxt_async.OperationFailed, match="not JSON"):
            await client.fetch_ticker(BTC)
    finally:
        await client.close()


async def test_unknown_route_is_a_json_error_not_a_bare_404(ex: Any) -> None:
    with pytest.raises(ccxt_async.OperationFailed, match="no route"):
        await ex.fapiPublicGetContinuousKlines(
            {"pair": "BTCUSDT", "contractType": "PERPETUAL", "interval": "1m"}
        )


async def test_dry_run_client_never_calls_a_private_endpoint(server: EmulatorServer) -> None:
    client = _client(server, private=False)
    try:
        await client.load_markets()
        await client.fetch_ticker(BTC)
        await client.fetch_order_book(BTC, 5)
        await client.fetch_funding_rate(BTC)
        calls_before = list(server.calls)
        for call in (
            client.fetch_balance(),
            client.fetch_positions(),
            client.fetch_open_orders(),
            client.create_order(BTC, "market", "buy", 0.01, None),
            client.cancel_order("1", BTC),
        ):
            with pytest.raises(ccxt_async.AuthenticationError):
                await call
        assert server.calls == calls_before  # refused before any request left the client
        assert server.private_calls() == []
        assert server.state.orders == {}
    finally:
        await client.close()


async def test_reconciliation_and_housekeeping_calls(ex: Any, server: EmulatorServer) -> None:
    await ex.load_markets()
    await ex.create_order(BTC, "market", "buy", 0.01, None)
    await ex.create_order(BTC, "limit", "buy", 0.01, 50_000.0)
    server.settle_funding()
    leverage = await ex.fetch_leverage(BTC)
    assert leverage["longLeverage"] == 20
    cancelled = await ex.cancel_all_orders(BTC)
    assert isinstance(cancelled, list) and server.state.open_orders == {}
    history = await ex.fetch_funding_rate_history(BTC)
    assert len(history) == 1 and history[0]["fundingRate"] == pytest.approx(0.0001)
    payments = await ex.fetch_funding_history(BTC)
    assert payments[0]["amount"] == pytest.approx(-0.01 * 60_000.0 * 0.0001, rel=1e-3)
    orders = await ex.fetch_orders(BTC)
    assert [o["status"] for o in orders] == ["closed", "canceled"]
    assert (await ex.fetch_position_mode(BTC))["hedged"] is False
    with pytest.raises(ccxt_async.MarginModeAlreadySet):
        await ex.set_margin_mode("cross", BTC)
