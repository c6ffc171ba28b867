"""The account's trades are the truth about fees and about fills no order of the bot
explains; an answer that repeats or garbles a trade must not change money.

Measured on main:
- a trade listed twice in an order's trades (`userTrades`) doubled the order's fee;
- a trade placed elsewhere whose price was null or 0, or whose quantity was null, was
  skipped: reconciliation then adopted the position without its fill (PnL and fee
  lost); one with a negative quantity was booked as a fill of -0.01; one without an
  id or order id was booked under "None" (every later such trade was then lost);
- a forceOrders row without its orderId (or an answer that is not a list) was read as
  no liquidation: the exchange's liquidation was booked as an ordinary trade of
  another order (not counted as a liquidation, no LIQUIDATION warning, a run that
  passed promotion's "no liquidations");
- a failed read of the second symbol lost the first symbol's fills: they were marked
  handed out before the read that failed.
Now a trade counts once, and an unreadable one fails the read (retried, then
VenueUnavailable: reconciliation is skipped and tries again), losing nothing."""

from typing import Any

import pytest

from perps_bot.domain import Order, OrderType, Side
from perps_bot.venues.base import VenueUnavailable
from perps_bot.venues.live import LiveVenue
from perps_emulator import EmulatorServer, Fault
from tests.live.live_helpers import (
    ClientFactory,
    exchange_cfg,
    started_venue,
)

pytestmark = pytest.mark.integration

TRADES = "/fapi/v1/userTrades"
FORCE_ORDERS = "/fapi/v1/forceOrders"
WRONG_TRADES: dict[str, dict[str, Any]] = {
    "null price": {"price": None},
    "zero price": {"price": "0"},
    "null quantity": {"qty": None},
    "negative quantity": {"qty": "-0.010"},
    "null id": {"id": None},
    "null order id": {"orderId": None},
    "null commission": {"commission": None},
}


async def _venue(
    emulator: EmulatorServer, make_client: ClientFactory, symbols: list[str]
) -> LiveVenue:
    """A started venue whose circuit breaker never opens (a failed read is then the
    only thing a test sees)."""
    venue, _ = await started_venue(emulator, make_client, symbols, breaker_failures=1_000)
    return venue


async def _by_hand(emulator: EmulatorServer, make_client: ClientFactory) -> int:
    """A market buy of 0.01 ETH placed on the account by another client; returns a
    time (ms) to look for fills from (ccxt asks Binance for 7 days from it)."""
    other = make_client(exchange_cfg(emulator), private=True)
    await other.load_markets()
    await other.create_order("ETH/USDT:USDT", "market", "buy", 0.01)
    return emulator.state.trades[-1].time - 1_000


async def test_a_trade_listed_twice_is_charged_once(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    venue = await _venue(emulator, make_client, ["ETH-PERP"])
    order = Order("wt-1", "ETH-PERP", Side.BUY, 0.01, OrderType.MARKET, None, False, 0, "wt-1")
    await venue.submit(order)
    emulator.inject(Fault("repeat", method="GET", path=TRADES))
    fills = await venue.poll(10**13)
    (trade,) = emulator.state.trades
    assert [f.fee for f in fills] == [pytest.approx(trade.commission, abs=1e-12)]


async def test_a_trade_listed_twice_is_charged_once_on_recovery(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    venue = await _venue(emulator, make_client, ["ETH-PERP"])
    await _by_hand(emulator, make_client)
    emulator.inject(Fault("repeat", method="GET", path=TRADES))
    (trade,) = emulator.state.trades
    fee = await venue.commission_of("ETH-PERP", str(trade.order_id))
    assert fee == pytest.approx(trade.commission, abs=1e-12)


@pytest.mark.parametrize("fields", WRONG_TRADES.values(), ids=WRONG_TRADES)
async def test_an_unreadable_foreign_trade_fails_the_read_and_is_booked_later(
    emulator: EmulatorServer, make_client: ClientFactory, fields: dict[str, Any]
) -> None:
    venue = await _venue(emulator, make_client, ["ETH-PERP"])
    since = await _by_hand(emulator, make_client)
    emulator.inject(Fault("rewrite", method="GET", path=TRADES, fields=fields, count=5))
    with pytest.raises(VenueUnavailable, match="fetch trades ETH-PERP"):
        await venue.exchange_fills(since, ["ETH-PERP"])
    fills = await venue.exchange_fills(since, ["ETH-PERP"])
    (trade,) = emulator.state.trades
    assert [(f.side, f.size, f.price, f.fee) for f in fills] == [
        (Side.BUY, 0.01, pytest.approx(trade.price), pytest.approx(trade.commission))
    ]
    assert await venue.exchange_fills(since, ["ETH-PERP"]) == []  # handed out once


async def test_a_foreign_trade_listed_twice_is_booked_once(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    venue = await _venue(emulator, make_client, ["ETH-PERP"])
    since = await _by_hand(emulator, make_client)
    emulator.inject(Fault("repeat", method="GET", path=TRADES))
    assert [f.size for f in await venue.exchange_fills(since, ["ETH-PERP"])] == [0.01]


async def test_a_failed_read_of_another_symbol_loses_no_fill(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    venue = await _venue(emulator, make_client, ["ETH-PERP", "BTC-PERP"])
    since = await _by_hand(emulator, make_client)
    # ETH's liquidations and trades are read, then BTC's liquidations keep failing
    emulator.inject(Fault("status", method="GET", path=FORCE_ORDERS, after=1, count=5))
    with pytest.raises(VenueUnavailable, match="fetch liquidations BTC-PERP"):
        await venue.exchange_fills(since, ["ETH-PERP", "BTC-PERP"])
    fills = await venue.exchange_fills(since, ["ETH-PERP", "BTC-PERP"])
    assert [(f.symbol, f.size) for f in fills] == [("ETH-PERP", 0.01)]


async def test_a_liquidation_not_tied_to_its_order_fails_the_read(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    venue = await _venue(emulator, make_client, ["ETH-PERP"])
    order = Order("wt-2", "ETH-PERP", Side.BUY, 0.01, OrderType.MARKET, None, False, 0, "wt-2")
    await venue.submit(order)
    emulator.liquidation = True
    emulator.set_price("ETHUSDT", emulator.price("ETHUSDT") * 0.3)
    since = emulator.state.trades[0].time - 1_000
    emulator.inject(
        Fault("rewrite", method="GET", path=FORCE_ORDERS, fields={"orderId": None}, count=5)
    )
    with pytest.raises(VenueUnavailable, match="fetch liquidations ETH-PERP"):
        await venue.exchange_fills(since, ["ETH-PERP"])
    (fill,) = await venue.exchange_fills(since, ["ETH-PERP"])
    assert (fill.side, fill.size, fill.is_liquidation) == (Side.SELL, 0.01, True)
    assert fill.client_id.startswith("autoclose-")
