"""A commission charged in another asset (Binance charges BNB when the account's BNB
fee discount is on: `commissionAsset: "BNB"`) is never booked as the settlement asset.

Measured on main:
- a trade of an order placed elsewhere, booked by reconciliation, carried its BNB
  amount as its USDT fee (0.5 BNB booked as 0.5 USDT);
- after a crash, the recovered fill of an order charged in BNB was booked with no fee
  at all (the commission read None, and recovery took 0);
- the bot's own orders did get the instrument's estimate, but the run log said so for
  every order, and said the trades "do not say it yet" (they never will).
Now each such trade's fee is the instrument's bps of its notional (maker or taker as
the trade says), and the run log says once per asset that these fees are estimates."""

import logging

import pytest

from perps_bot.domain import Order, OrderType, Side
from perps_bot.venues.live import LiveVenue
from perps_emulator import EmulatorServer, EmuTrade, Fault
from tests.live.live_helpers import ClientFactory, exchange_cfg, started_venue

pytestmark = pytest.mark.integration

TRADES = "/fapi/v1/userTrades"
IN_BNB = {"commissionAsset": "BNB", "commission": "0.50000000"}
TAKER = 5e-4  # the instruments' taker bps (live_helpers.exchange_instruments)
LOGGER = "perps_bot.venues.live"


def _estimate(trade: EmuTrade) -> float:
    return trade.qty * trade.price * TAKER


def _bnb_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and r.levelno == logging.WARNING and "BNB" in r.getMessage()
    ]


async def _by_hand(emulator: EmulatorServer, make_client: ClientFactory, times: int) -> int:
    """Market buys of 0.01 ETH placed by another client; a time to look for fills from."""
    other = make_client(exchange_cfg(emulator), private=True)
    await other.load_markets()
    for _ in range(times):
        await other.create_order("ETH/USDT:USDT", "market", "buy", 0.01)
    return emulator.state.trades[0].time - 1_000


def _order(client_id: str) -> Order:
    return Order(client_id, "ETH-PERP", Side.BUY, 0.01, OrderType.MARKET, None, False, 0,
                 client_id)  # fmt: skip


async def _venue(emulator: EmulatorServer, make_client: ClientFactory) -> LiveVenue:
    venue, _ = await started_venue(emulator, make_client)
    return venue


async def test_a_foreign_trade_charged_in_bnb_is_booked_at_the_estimate(
    emulator: EmulatorServer, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    venue = await _venue(emulator, make_client)
    since = await _by_hand(emulator, make_client, 2)
    emulator.inject(Fault("rewrite", method="GET", path=TRADES, fields=IN_BNB, count=2))
    fills = await venue.exchange_fills(since, ["ETH-PERP"])
    fills += await venue.exchange_fills(since, ["ETH-PERP"])  # nothing new: read again
    expected = [pytest.approx(_estimate(t), rel=1e-9) for t in emulator.state.trades]
    assert [f.fee for f in fills] == expected
    (line,) = _bnb_lines(caplog)
    assert "estimate" in line


async def test_own_orders_charged_in_bnb_are_estimated_and_said_once(
    emulator: EmulatorServer, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    venue = await _venue(emulator, make_client)
    emulator.inject(Fault("rewrite", method="GET", path=TRADES, fields=IN_BNB, count=10))
    fills = []
    for n, now in enumerate((10**13, 10**13 + 10_000)):
        await venue.submit(_order(f"bnb-{n}"))
        fills += await venue.poll(now)
    expected = [pytest.approx(_estimate(t), rel=1e-9) for t in emulator.state.trades]
    assert [f.fee for f in fills] == expected
    (line,) = _bnb_lines(caplog)
    assert "estimate" in line
    assert not [r for r in caplog.records if "do not say it yet" in r.getMessage()]


async def test_a_recovered_order_charged_in_bnb_gets_the_estimate(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    venue = await _venue(emulator, make_client)
    await _by_hand(emulator, make_client, 1)
    emulator.inject(Fault("rewrite", method="GET", path=TRADES, fields=IN_BNB))
    (trade,) = emulator.state.trades
    fee = await venue.commission_of("ETH-PERP", str(trade.order_id))
    assert fee == pytest.approx(_estimate(trade), rel=1e-9)
