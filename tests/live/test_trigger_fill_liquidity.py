"""A stop-loss or take-profit that triggers becomes a market order on the exchange
(SPEC 16): its fill took liquidity. Measured on main: the live venue booked the stop's
fill as `maker` (only `market` orders and limit orders filled on arrival counted as
taker), so its estimated fee, before the exchange's commission replaces it or when that
cannot be read, was the maker rate, and a live capture's replay (SPEC 14) did not know
the prints it left on the public tape were the bot's own. Now a trigger order's fill is
a taker fill."""

from dataclasses import replace

import pytest

from perps_bot.domain import Liquidity, OrderType, Side
from tests.live.test_live_venue_emulator import FAR_FUTURE, Harness, instruments, live

__all__ = ["instruments", "live"]  # the fixtures this module reuses

pytestmark = pytest.mark.integration


async def test_a_triggered_stops_fill_took_liquidity(live: Harness) -> None:
    live.server.set_price("BTCUSDT", 60_000.0)
    await live.venue.submit(live.order(Side.BUY, 0.002))
    await live.venue.poll(FAR_FUTURE)
    stop = replace(live.order(Side.SELL, 0.002, reduce_only=True), client_id="pbstopliq",
                   correlation_id="pbstopliq", order_type=OrderType.STOP_MARKET,
                   trigger_price=59_000.0, reason="stop")  # fmt: skip
    await live.venue.submit(stop)
    live.server.set_price("BTCUSDT", 58_800.0)
    fills = await live.venue.poll(FAR_FUTURE + 20_000)
    assert [(f.client_id, f.liquidity) for f in fills] == [("pbstopliq", Liquidity.TAKER)]
