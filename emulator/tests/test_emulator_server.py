"""Prices, book, determinism, recording, control endpoints and safety of the emulator."""

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from perps_emulator import EmulatorServer, Fault
from perps_emulator.server import EmulatorError

FIXED_MS = 1_700_000_000_000


def fixed_clock() -> int:
    return FIXED_MS


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(trust_env=False) as client:
        yield client


async def get_text(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with session.get(url) as response:
        return response.status, await response.text()


async def get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def post_json(session: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    async with session.post(url, json=body) as response:
        return response.status, await response.json()


async def _public_snapshot(server: EmulatorServer, session: aiohttp.ClientSession) -> str:
    parts = []
    for path in (
        "/fapi/v1/depth?symbol=BTCUSDT&limit=50",
        "/fapi/v1/premiumIndex",
        "/fapi/v1/ticker/24hr",
        "/fapi/v1/klines?symbol=ETHUSDT&interval=1m&limit=10",
    ):
        status, text = await get_text(session, server.base_url + path)
        assert status == 200
        parts.append(text)
    return "\n".join(parts)


async def test_same_seed_same_bytes_other_seed_differs(session: aiohttp.ClientSession) -> None:
    snapshots = []
    for seed in (7, 7, 8):
        server = EmulatorServer(seed=seed, clock=fixed_clock)
        await server.start()
        try:
            server.step(50)
            snapshots.append(await _public_snapshot(server, session))
        finally:
            await server.stop()
    assert snapshots[0] == snapshots[1]
    assert snapshots[0] != snapshots[2]


async def test_prices_walk_and_set_price_snaps_to_tick() -> None:
    server = EmulatorServer(seed=1, prices={"BTCUSDT": 50_000.0}, clock=fixed_clock)
    start = server.price("BTCUSDT")
    assert start == 50_000.0
    server.step(20)
    moved = server.price("BTCUSDT")
    assert moved != start and abs(moved / start - 1) < 0.05
    server.set_price("BTCUSDT", 61_234.56)
    assert server.price("BTCUSDT") == 61_234.6
    with pytest.raises(EmulatorError):
        server.set_price("DOGEUSDT", 1.0)


async def test_depth_is_consistent_with_price(session: aiohttp.ClientSession) -> None:
    server = EmulatorServer(seed=2)
    await server.start()
    try:
        ids = []
        for _ in range(3):
            server.step()
            last = server.price("ETHUSDT")
            book = await get_json(session, server.base_url + "/fapi/v1/depth?symbol=ETHUSDT")
            ids.append(book["lastUpdateId"])
            bids = [(float(p), float(q)) for p, q in book["bids"]]
            asks = [(float(p), float(q)) for p, q in book["asks"]]
            assert len(bids) == len(asks) == 500  # Binance's default limit
            assert bids[0][0] < last < asks[0][0] or bids[0][0] < asks[0][0] == last
            assert asks[0][0] - bids[0][0] < last * 1e-4
            assert all(a[0] < b[0] for a, b in itertools.pairwise(asks))
            assert all(a[0] > b[0] for a, b in itertools.pairwise(bids))
            assert all(q > 0 for _, q in bids + asks)
            top = await get_json(
                session, server.base_url + "/fapi/v1/ticker/bookTicker?symbol=ETHUSDT"
            )
            assert (float(top["bidPrice"]), float(top["askPrice"])) == (bids[0][0], asks[0][0])
        assert ids == sorted(ids) and len(set(ids)) == 3
        small = await get_json(session, server.base_url + "/fapi/v1/depth?symbol=ETHUSDT&limit=5")
        assert len(small["bids"]) == 5
    finally:
        await server.stop()


async def test_exchange_info_and_premium_index(session: aiohttp.ClientSession) -> None:
    server = EmulatorServer(symbols=("BTCUSDT", "SOLUSDT"), clock=fixed_clock)
    await server.start()
    try:
        info = await get_json(session, server.base_url + "/fapi/v1/exchangeInfo")
        btc = {s["symbol"]: s for s in info["symbols"]}["BTCUSDT"]
        assert (btc["marginAsset"], btc["contractType"], btc["status"]) == (
            "USDT",
            "PERPETUAL",
            "TRADING",
        )
        filters = {f["filterType"]: f for f in btc["filters"]}
        assert filters["PRICE_FILTER"]["tickSize"] == "0.10"
        assert filters["LOT_SIZE"]["stepSize"] == "0.001"
        assert filters["MIN_NOTIONAL"]["notional"] == "100"
        assert "MARKET_LOT_SIZE" in filters and {"LIMIT", "MARKET"} <= set(btc["orderTypes"])
        rows = await get_json(session, server.base_url + "/fapi/v1/premiumIndex")
        assert [r["symbol"] for r in rows] == ["BTCUSDT", "SOLUSDT"]
        for row in rows:
            assert row["time"] == FIXED_MS
            assert row["nextFundingTime"] % (8 * 3_600_000) == 0
            assert 0 < row["nextFundingTime"] - FIXED_MS <= 8 * 3_600_000
        server.step(10)
        row = await get_json(session, server.base_url + "/fapi/v1/premiumIndex?symbol=BTCUSDT")
        assert abs(float(row["markPrice"]) / server.price("BTCUSDT") - 1) < 0.002
        assert float(row["lastFundingRate"]) != 0.0001  # the funding process moved too
    finally:
        await server.stop()


async def test_calls_are_recorded_with_privacy_and_unknown_routes_answer_400(
    session: aiohttp.ClientSession,
) -> None:
    server = EmulatorServer()
    await server.start()
    try:
        await get_text(session, server.base_url + "/fapi/v1/ticker/24hr?symbol=BTCUSDT")
        status, text = await get_text(session, server.base_url + "/fapi/v3/account")
        assert status == 401 and '"code": -2014' in text  # private route without api key
        status, text = await get_text(session, server.base_url + "/fapi/v9/nothing")
        assert status == 400 and '"code": -1000' in text
        assert server.calls == [
            ("GET", "/fapi/v1/ticker/24hr", False),
            ("GET", "/fapi/v3/account", True),
            ("GET", "/fapi/v9/nothing", False),
        ]
        assert server.private_calls() == [("GET", "/fapi/v3/account", True)]
    finally:
        await server.stop()


async def test_control_endpoints(session: aiohttp.ClientSession) -> None:
    server = EmulatorServer(clock=fixed_clock)
    await server.start()
    base = server.base_url + "/_emulator/"
    try:
        status, body = await post_json(
            session,
            base + "fault",
            {"kind": "status", "method": "GET", "path": "/fapi/v1/time", "status": 502, "count": 2},
        )
        assert (status, body["pending"]) == (200, 1)
        for expected in (502, 502, 200):
            assert (await get_text(session, server.base_url + "/fapi/v1/time"))[0] == expected
        status, body = await post_json(session, base + "fault", {"kind": "nonsense"})
        assert status == 400 and "unknown fault kind" in body["error"]
        status, body = await post_json(session, base + "fault", {"kind": "status", "bogus": 1})
        assert status == 400
        assert (await post_json(session, base + "price", {"symbol": "BTCUSDT", "price": 42_000}))[
            0
        ] == 200
        assert server.price("BTCUSDT") == 42_000.0
        assert (await post_json(session, base + "step", {"n": 3}))[0] == 200
        assert server.price("BTCUSDT") != 42_000.0
        assert (await post_json(session, base + "price", {"symbol": "X", "price": 1}))[0] == 400
        assert (await post_json(session, base + "funding", {}))[0] == 200
        state = await get_json(session, base + "state")
        assert state["balances"] == {"USDT": 10_000.0}
        assert set(state["prices"]) == {"BTCUSDT", "ETHUSDT"}
        calls = await get_json(session, base + "calls")
        assert calls == [["GET", "/fapi/v1/time", False]] * 3  # control calls not recorded
    finally:
        await server.stop()


async def test_faults_match_method_and_path_and_copy_on_inject(
    session: aiohttp.ClientSession,
) -> None:
    server = EmulatorServer()
    await server.start()
    try:
        fault = Fault(kind="malformed", method="*", path="/fapi/v1/ping", count=1)
        server.inject(fault)
        assert (await get_text(session, server.base_url + "/fapi/v1/time"))[0] == 200
        status, text = await get_text(session, server.base_url + "/fapi/v1/ping")
        assert status == 200 and not text.startswith("{}")
        assert (await get_text(session, server.base_url + "/fapi/v1/ping")) == (200, "{}")
        assert fault.count == 1  # the caller's object was not consumed
    finally:
        await server.stop()


async def test_a_fault_with_after_lets_that_many_matching_requests_through(
    session: aiohttp.ClientSession,
) -> None:
    server = EmulatorServer()
    await server.start()
    try:
        server.inject(Fault(kind="malformed", method="GET", path="/fapi/v1/ping", after=2))
        ping = server.base_url + "/fapi/v1/ping"
        assert (await get_text(session, server.base_url + "/fapi/v1/time"))[0] == 200
        assert [await get_text(session, ping) for _ in range(2)] == [(200, "{}")] * 2
        status, text = await get_text(session, ping)
        assert status == 200 and text != "{}"  # the third one is garbled
        assert (await get_text(session, ping)) == (200, "{}")  # count 1: spent
    finally:
        await server.stop()
    with pytest.raises(ValueError, match="after must be >= 0"):
        Fault(kind="malformed", after=-1)


async def test_a_rewrite_fault_sets_fields_of_a_processed_answer(
    session: aiohttp.ClientSession,
) -> None:
    server = EmulatorServer()
    await server.start()
    try:
        server.inject(Fault(kind="rewrite", method="GET", path="/fapi/v1/time",
                            fields={"serverTime": None, "extra": "x"}))  # fmt: skip
        url = server.base_url + "/fapi/v1/time"
        assert await get_json(session, url) == {"serverTime": None, "extra": "x"}
        assert isinstance((await get_json(session, url))["serverTime"], int)  # spent
    finally:
        await server.stop()
    with pytest.raises(ValueError, match="rewrite fault takes fields"):
        Fault(kind="rewrite")
    with pytest.raises(ValueError, match="rewrite fault takes fields"):
        Fault(kind="malformed", fields={})


async def test_a_repeat_fault_lists_each_row_of_a_processed_answer_twice(
    session: aiohttp.ClientSession,
) -> None:
    server = EmulatorServer()
    await server.start()
    try:
        url = server.base_url + "/fapi/v1/ticker/price"
        symbols = [row["symbol"] for row in await get_json(session, url)]
        server.inject(Fault(kind="repeat", method="GET", path="/fapi/v1/ticker/price"))
        server.inject(Fault(kind="repeat", method="GET", path="/fapi/v1/time"))
        repeated = [row["symbol"] for row in await get_json(session, url)]
        assert repeated == [symbol for symbol in symbols for _ in range(2)]
        assert [row["symbol"] for row in await get_json(session, url)] == symbols  # spent
        time_url = server.base_url + "/fapi/v1/time"
        assert isinstance((await get_json(session, time_url))["serverTime"], int)  # no list
    finally:
        await server.stop()


async def test_stop_releases_held_answers_promptly(session: aiohttp.ClientSession) -> None:
    server = EmulatorServer()
    await server.start()
    server.inject(Fault(kind="timeout", method="GET", path="/fapi/v1/time", delay_s=60.0))
    with pytest.raises(TimeoutError):
        async with session.get(
            server.base_url + "/fapi/v1/time", timeout=aiohttp.ClientTimeout(total=0.2)
        ):
            pass
    started = time.monotonic()
    await server.stop()
    assert time.monotonic() - started < 2.0


async def test_timer_steps_prices_while_running() -> None:
    server = EmulatorServer(tick_interval_s=0.005)
    start_id = server.markets["BTCUSDT"].update_id
    await server.start()
    try:
        deadline = time.monotonic() + 5.0
        while server.markets["BTCUSDT"].update_id < start_id + 3:
            assert time.monotonic() < deadline, "the timer never stepped"
            await asyncio.sleep(0.005)
    finally:
        await server.stop()
    stopped_at = server.markets["BTCUSDT"].update_id
    await asyncio.sleep(0.02)
    assert server.markets["BTCUSDT"].update_id == stopped_at  # the timer stopped too


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "example.com", "::"])
def test_refuses_non_loopback_hosts(host: str) -> None:
    with pytest.raises(EmulatorError, match="not loopback"):
        EmulatorServer(host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_accepts_loopback_hosts(host: str) -> None:
    assert EmulatorServer(host=host).host == host


def test_bad_setup_is_emulator_error() -> None:
    with pytest.raises(EmulatorError, match="not emulated"):
        EmulatorServer(prices={"SOLUSDT": 100.0})
    with pytest.raises(EmulatorError, match="USDT perpetual"):
        EmulatorServer(symbols=("BTC-PERP",))
    with pytest.raises(EmulatorError):
        EmulatorServer(symbols=())
