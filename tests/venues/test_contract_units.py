"""Sizes on a contract market (ccxt `contractSize`): what the instrument prepares in base
units goes to the exchange as a whole number of its contract steps, never below its
minimum, and the exchange's executed contracts come back as exactly that size."""

import asyncio
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from perps_bot.config import FeesConfig, InstrumentConfig
from perps_bot.domain import InstrumentRefusal, OrderType, Side
from perps_bot.instruments import catalog_from_markets
from perps_bot.venues.live.contracts import ContractUnits

MARKET = "X/USDT:USDT"


class FakeExchange:
    """Fills every order whole; remembers the amount it was sent."""

    def __init__(self, contract_size: float, step: float, minimum: float) -> None:
        self.markets = {
            MARKET: {
                "precision": {"price": 0.01, "amount": step},
                "limits": {"amount": {"min": minimum}},
                "contractSize": contract_size,
            }
        }
        self.sent: list[float] = []

    async def create_order(self, symbol: str, kind: str, side: str, amount: float,
                           *args: Any) -> dict[str, Any]:  # fmt: skip
        self.sent.append(amount)
        return {"id": "1", "symbol": symbol, "amount": amount, "filled": amount,
                "remaining": 0.0, "trades": "kept"}  # fmt: skip


def whole(value: float, step: float) -> bool:
    steps = Decimal(repr(value)) / Decimal(repr(step))
    return steps == steps.to_integral_value()


@settings(max_examples=300, deadline=None)
@given(
    contract_size=st.sampled_from([0.0001, 0.001, 0.01, 0.1, 0.3, 0.5, 3.0, 10.0, 1000.0]),
    step=st.sampled_from([0.001, 0.01, 0.1, 0.5, 1.0, 5.0]),
    minimum_steps=st.integers(1, 5),
    size=st.floats(1e-6, 1e7),
)
def test_prepared_sizes_are_whole_contract_steps_both_ways(
    contract_size: float, step: float, minimum_steps: int, size: float
) -> None:
    exchange = FakeExchange(contract_size, step, step * minimum_steps)
    profile = {"X-PERP": InstrumentConfig(exchange_symbol=MARKET)}
    instrument = catalog_from_markets(exchange.markets, ["X-PERP"], profile, FeesConfig())["X-PERP"]
    try:
        prepared = instrument.prepare(Side.BUY, size, OrderType.MARKET, None, True, 1.0)
    except InstrumentRefusal:
        return
    reply = asyncio.run(
        ContractUnits(exchange).create_order(MARKET, "market", "buy", prepared.size, None, {})
    )
    (contracts,) = exchange.sent
    assert whole(contracts, step), (prepared.size, contracts)
    assert Decimal(repr(contracts)) >= Decimal(repr(step)) * minimum_steps
    assert reply["filled"] == reply["amount"] == prepared.size  # back in base units
    assert (reply["remaining"], reply["trades"]) == (0.0, "kept")
