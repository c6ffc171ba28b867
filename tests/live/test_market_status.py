"""A market the exchange lists but does not trade (Binance's exchangeInfo status
SETTLING, CLOSE, PENDING_TRADING: delisted, halted or not yet open) is no instrument:
a run on it is refused in one line before anything starts. It was built into an
instrument like any other, so a dry run traded a book the exchange had frozen and a
live run sent orders the exchange could only reject."""

from copy import deepcopy

import pytest

from perps_bot.instruments import UnknownInstrument
from perps_emulator import EmulatorServer, Fault
from tests.live.live_helpers import ClientFactory, exchange_cfg, exchange_instruments

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("status", ["SETTLING", "CLOSE", "PENDING_TRADING"])
async def test_a_market_that_is_not_trading_is_refused_in_one_line(
    emulator: EmulatorServer, make_client: ClientFactory, status: str
) -> None:
    raw = await make_client(exchange_cfg(emulator), private=False).fapiPublicGetExchangeInfo()
    symbols = deepcopy(raw["symbols"])
    for row in symbols:
        if row["symbol"] == "ETHUSDT":
            row["status"] = status
    emulator.inject(
        Fault("rewrite", method="GET", path="/fapi/v1/exchangeInfo", fields={"symbols": symbols})
    )
    with pytest.raises(UnknownInstrument) as refused:
        await exchange_instruments(emulator, make_client, ["BTC-PERP", "ETH-PERP"])
    message = str(refused.value)
    assert "\n" not in message
    assert "ETH-PERP" in message and "not trading" in message and status in message, message


async def test_trading_markets_are_instruments(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    catalog = await exchange_instruments(emulator, make_client, ["BTC-PERP", "ETH-PERP"])
    assert sorted(catalog) == ["BTC-PERP", "ETH-PERP"]
