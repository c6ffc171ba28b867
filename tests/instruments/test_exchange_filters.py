"""An exchange run trades the exchange's filters (SPEC 8), never silently another's.

Measured on main: a profile's `instruments:` value (contract_size, tick, step, minimums,
maximums) in a dry or live run was replaced by the exchange market's without a word, so
the run traded another contract than the one the profile (and every backtest of it)
described; and a maximum the market does not give was the built-in data's Binance value
(ETH-PERP: 2000 a market order), which refused or split orders the exchange takes. A
profile value the market disagrees with is now refused in one line; one it agrees with,
or one the market does not give, is fine."""

from typing import Any

import pytest

from perps_bot.config import FeesConfig, InstrumentConfig
from perps_bot.domain import DenialReason, Instrument, InstrumentRefusal, Side
from perps_bot.domain.enums import LIMIT
from perps_bot.instruments import InstrumentError, catalog_from_markets

ETH = "ETH/USDT:USDT"
MARKET = {
    "precision": {"price": 0.01, "amount": 0.001},
    "limits": {"amount": {"min": 0.001}, "cost": {"min": 20.0}},
    "contractSize": 1.0,
}


def _eth(**stated: Any) -> Instrument:
    profile = {"ETH-PERP": InstrumentConfig(**stated)} if stated else {}
    return catalog_from_markets({ETH: MARKET}, ["ETH-PERP"], profile, FeesConfig())["ETH-PERP"]


@pytest.mark.parametrize(
    ("stated", "said"),
    [
        ({"contract_size": 10.0}, "contract_size: the profile says 10, the exchange's"),
        ({"tick_size": 0.1}, "tick_size: the profile says 0.1"),
        ({"min_notional": 5.0}, "min_notional: the profile says 5, the exchange's market"),
    ],
)
def test_a_profile_value_the_exchange_disagrees_with_is_refused(
    stated: dict[str, float], said: str
) -> None:
    with pytest.raises(InstrumentError, match=f"instruments.ETH-PERP.{said}") as refused:
        _eth(**stated)
    assert "\n" not in str(refused.value) and "remove it from the profile" in str(refused.value)


def test_a_profile_value_the_exchange_agrees_with_or_does_not_give_stands() -> None:
    eth = _eth(tick_size=0.01, contract_size=1.0, min_notional=20.0, max_market_quantity=50.0)
    assert (eth.tick_size, eth.min_notional, eth.max_market_quantity) == (0.01, 20.0, 50.0)


def test_a_maximum_the_market_does_not_give_is_none() -> None:
    eth = _eth()
    assert (eth.max_quantity, eth.max_market_quantity) == (None, None)


def test_the_percent_price_band_comes_from_the_market() -> None:
    """Binance's PERCENT_PRICE (ccxt leaves it in the market's info): a limit buy above
    mark * multiplierUp or a sell below mark * multiplierDown is refused before it
    exists, as the exchange refuses it (-4016 / -4024); none while no mark is known."""
    band = {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500"}
    market = {**MARKET, "info": {"filters": [{"filterType": "PRICE_FILTER"}, band]}}
    eth = catalog_from_markets({ETH: market}, ["ETH-PERP"], {}, FeesConfig())["ETH-PERP"]
    assert eth.price_band == (1.05, 0.95)
    with pytest.raises(InstrumentRefusal) as above:
        eth.prepare(Side.BUY, 0.01, LIMIT, 2_700.0, False, 3_000.0, 2_500.0)
    assert above.value.reason is DenialReason.PRICE_OUTSIDE_BAND
    with pytest.raises(InstrumentRefusal, match="below 2375"):
        eth.prepare(Side.SELL, 0.01, LIMIT, 2_370.0, True, 3_000.0, 2_500.0)
    assert eth.prepare(Side.BUY, 0.01, LIMIT, 2_625.0, False, 3_000.0, 2_500.0).price == 2_625.0
    assert eth.prepare(Side.BUY, 0.01, LIMIT, 2_700.0, False, 3_000.0, 0.0).price == 2_700.0
    assert _eth().price_band is None  # a market without the filter: no band


def test_the_most_open_stops_and_take_profits_come_from_the_market() -> None:
    """Binance's MAX_NUM_ALGO_ORDERS (ccxt leaves it in the market's info) is the
    instrument's `max_algo_orders`: a position whose stop and take-profit take more
    orders than that cannot be protected; no limit when the market gives none (not the
    built-in data's), and a profile that says otherwise is refused."""
    algo = {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10}
    market = {
        **MARKET,
        "limits": {**MARKET["limits"], "market": {"max": 2000.0}},
        "info": {"filters": [{"filterType": "MAX_NUM_ORDERS", "limit": 200}, algo]},
    }
    eth = catalog_from_markets({ETH: market}, ["ETH-PERP"], {}, FeesConfig())["ETH-PERP"]
    assert eth.max_algo_orders == 10
    eth.check_protection(10_000.0, True, True)  # 5 stops + 5 take-profits
    eth.check_protection(12_000.0, True, False)  # 6 stops
    with pytest.raises(InstrumentRefusal, match="would need 12 protective orders") as refused:
        eth.check_protection(12_000.0, True, True)
    assert refused.value.reason is DenialReason.ABOVE_MAX_QUANTITY
    assert _eth().max_algo_orders is None
    with pytest.raises(InstrumentError, match="max_algo_orders: the profile says 5"):
        stated = {"ETH-PERP": InstrumentConfig(max_algo_orders=5)}
        catalog_from_markets({ETH: market}, ["ETH-PERP"], stated, FeesConfig())
