"""Exactly-once live orders (SPEC 9), through the real ccxt client against the emulator,
on the real clock: the two scenarios that used to double a position, a late request
refused by the receive window, the Retry-After of a rate limit, and the whole canary
bot riding out -1007 without a second order."""

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import load_settings
from perps_bot.config.models import AccountConfig, MarginMode
from perps_bot.domain import Order, OrderStatus, OrderType, Side
from perps_bot.instruments import InstrumentCatalog
from perps_bot.orchestrator.runner import run_bot
from perps_bot.venues.live import LiveVenue
from perps_emulator import EmulatorServer, Fault
from tests.live.live_helpers import (
    API_KEY,
    API_SECRET,
    ClientFactory,
    exchange_cfg,
    exchange_instruments,
    order_posts,
)

pytestmark = pytest.mark.integration

ACCOUNT = AccountConfig(initial_balance=10_000, margin_mode=MarginMode.ISOLATED, default_leverage=2)


async def real_venue(
    emulator: EmulatorServer, make_client: ClientFactory, **cfg: Any
) -> tuple[LiveVenue, InstrumentCatalog]:
    """A live venue on the real clock and real sleeps (the emulator's clock is real)."""
    instruments = await exchange_instruments(emulator, make_client, ["ETH-PERP"])
    config = exchange_cfg(emulator, **cfg)
    venue = LiveVenue(make_client(config, private=True), config, ACCOUNT, instruments)
    await venue.start()
    return venue, instruments


def eth_order(client_id: str, size: float = 0.01) -> Order:
    return Order(client_id, "ETH-PERP", Side.BUY, size, OrderType.MARKET, None, False, 0, client_id)


def exchange_orders(emulator: EmulatorServer, client_id: str) -> int:
    return sum(1 for o in emulator.state.orders.values() if o.client_order_id == client_id)


async def test_unknown_status_then_execution_is_found_not_resent(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    """Binance answers -1007 and executes the order half a second later: the bot looks
    the client id up until it appears, and never sends it again."""
    venue, _ = await real_venue(emulator, make_client, recv_window="3s")
    emulator.inject(Fault("unknown_then_execute", delay_s=0.5))
    order = eth_order("pbx1007x1")
    ack = await venue.submit(order)
    assert ack.status is OrderStatus.FILLED
    assert [u.status for u in venue.updates] == [
        OrderStatus.UNKNOWN,
        OrderStatus.ACCEPTED,
        OrderStatus.FILLED,
    ]
    await asyncio.sleep(0.6)  # had it been resent, the first copy would have run by now
    assert order_posts(emulator) == 1 and exchange_orders(emulator, "pbx1007x1") == 1
    assert emulator.state.positions["ETHUSDT"].amount == pytest.approx(0.01)
    await venue.stop()


async def test_request_reaching_the_engine_after_the_timeout_is_found_not_resent(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    venue, _ = await real_venue(emulator, make_client, timeout_ms=250, recv_window="3s")
    emulator.inject(Fault("late", delay_s=0.8))
    await venue.submit(eth_order("pbxlatex1"))
    await asyncio.sleep(0.2)
    assert order_posts(emulator) == 1 and exchange_orders(emulator, "pbxlatex1") == 1
    assert emulator.state.positions["ETHUSDT"].amount == pytest.approx(0.01)
    await venue.stop()


async def test_request_later_than_its_receive_window_never_executes_and_is_resent_once(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    """The late copy reaches the engine 1.6 s after signing, past the 1 s recvWindow: the
    exchange refuses it (-1021). The bot resends only once the window has certainly
    passed and the exchange still does not know the order: one execution in all."""
    venue, _ = await real_venue(emulator, make_client, timeout_ms=250, recv_window="1s")
    emulator.inject(Fault("late", delay_s=1.6))
    order = eth_order("pbxwindowx1")
    await venue.submit(order)
    await asyncio.sleep(1.7)  # the late copy has come and gone
    assert order_posts(emulator) == 2
    assert exchange_orders(emulator, "pbxwindowx1") == 1
    assert emulator.state.positions["ETHUSDT"].amount == pytest.approx(0.01)
    await venue.stop()


async def test_retry_after_is_honoured_on_the_real_clock(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    venue, _ = await real_venue(emulator, make_client)
    emulator.inject(Fault("rate_limit", count=1, retry_after=2, status=418))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await venue.submit(eth_order("pbxbannedx1"))
    assert loop.time() - started >= 2.0  # not the 10 ms backoff of the test config
    assert exchange_orders(emulator, "pbxbannedx1") == 1
    await venue.stop()


async def test_canary_bot_rides_out_minus_1007_without_doubling(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """The whole bot: its entry gets -1007 and runs late; the bot keeps one position, the
    exchange's, and sends nothing new for the symbol while the outcome is unknown."""
    emulator.inject(Fault("unknown_then_execute", delay_s=0.7))
    settings = load_settings(
        "canary",
        {
            "run": {"duration": "3s", "live_view": False, **run_dirs},
            "exchange": {
                "base_url": emulator.base_url,
                "poll_interval": "100ms",
                "recv_window": "2s",
                "api_key": API_KEY,
                "api_secret": API_SECRET,
            },
            "strategy": {"name": "tests.live.canary_strategy:FlipOnce", "params": {"hold": 1000}},
        },
    )
    result = await run_bot(settings, progress=False)
    assert result.status == "completed"
    assert len(emulator.state.orders) == 1
    with sqlite3.connect(result.db_path) as conn:
        fills = conn.execute(
            "SELECT size, position_after FROM fills WHERE run_id=?", (result.run_id,)
        ).fetchall()
        statuses = [r[0] for r in conn.execute(
            "SELECT status FROM orders WHERE run_id=?", (result.run_id,)
        )]  # fmt: skip
    assert fills == [(0.01, 0.01)]
    assert statuses == ["filled"]
    assert emulator.state.positions["ETHUSDT"].amount == pytest.approx(0.01)


async def test_a_slow_not_found_answer_is_judged_by_when_it_was_asked(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    """-1007, and the order executes 0.6 s later (inside its 1 s window). The first
    look-up is asked at once (the exchange does not know the order yet) and its
    'not found' comes back only after the window and the clock margin have passed:
    it says nothing of the time since it was asked. Judged by when it came back, the
    order was sent a second time."""
    venue, _ = await real_venue(emulator, make_client, recv_window="1s")
    emulator.inject(Fault("unknown_then_execute", delay_s=0.6))
    emulator.inject(Fault("accept_then_timeout", method="GET", delay_s=2.3))
    order = eth_order("pbxslowx1")
    await venue.submit(order)
    await asyncio.sleep(0.2)
    assert order_posts(emulator) == 1, "sent again"
    assert exchange_orders(emulator, "pbxslowx1") == 1
    assert emulator.state.positions["ETHUSDT"].amount == pytest.approx(0.01)
    await venue.stop()


async def test_a_request_held_by_the_rate_limiter_is_judged_by_when_it_was_signed(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    """ccxt's rate limiter holds the order 1.6 s before it signs and sends it; Binance
    answers -1007 and executes it 0.7 s after signing (inside its 1 s window). The
    bot counted the window from before the limiter's wait, judged the order certainly
    not executed 0.4 s after it was signed, and sent it again: two executions."""
    instruments = await exchange_instruments(emulator, make_client, ["ETH-PERP"])
    config = exchange_cfg(emulator, recv_window="1s")
    client = make_client(config, private=True)
    venue = LiveVenue(client, config, ACCOUNT, instruments)
    await venue.start()
    client.enableRateLimit = True  # as on the real exchange, its bucket empty for 1.6 s
    client.throttler.config["tokens"] = -client.throttler.config["refillRate"] * 1_600
    emulator.inject(Fault("unknown_then_execute", delay_s=0.7))
    order = eth_order("pbxthrottledx1")
    await venue.submit(order)
    await asyncio.sleep(0.8)  # a copy sent again would have executed by now
    assert exchange_orders(emulator, "pbxthrottledx1") == 1, "sent again"
    assert emulator.state.positions["ETHUSDT"].amount == pytest.approx(0.01)
    await venue.stop()
