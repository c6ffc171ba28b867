"""Instruments from the profile over the built-in data, and from an exchange's markets."""

from importlib import resources

import pytest
import yaml

from perps_bot.config import FeesConfig, InstrumentConfig, load_settings
from perps_bot.domain import InstrumentRefusal, OrderType, Side
from perps_bot.instruments import (
    InstrumentError,
    UnknownInstrument,
    catalog_from_markets,
    catalog_from_profile,
)
from perps_bot.instruments import catalog as catalog_module


def test_profile_entries_lay_over_the_built_in_data_key_by_key() -> None:
    catalog = catalog_from_profile(
        {
            "BTC-PERP": InstrumentConfig(min_notional=100.0, taker_bps=4.0),
            "SOL-PERP": InstrumentConfig(tick_size=0.01, step_size=1.0),
        },
        FeesConfig(maker_bps=1.0, taker_bps=6.0),
    )
    btc, sol, eth = catalog["BTC-PERP"], catalog["SOL-PERP"], catalog["ETH-PERP"]
    assert (btc.min_notional, btc.tick_size, btc.taker_bps, btc.maker_bps) == (100.0, 0.1, 4.0, 1.0)
    assert btc.tiers[0] == (0.0, 0.004, 0.0)  # Binance's BTC table, from the built-in data
    assert (sol.exchange_symbol, sol.min_quantity, sol.min_notional) == ("SOL/USDT:USDT", 1.0, 0.0)
    assert sol.tiers[0] == (0.0, 0.01, 0.0)  # the generic table
    assert eth.taker_bps == 6.0  # the profile's fee schedule


def test_an_incomplete_instrument_is_one_line() -> None:
    with pytest.raises(InstrumentError, match=r"instruments\.SOL-PERP: step_size required"):
        catalog_from_profile({"SOL-PERP": InstrumentConfig(tick_size=0.01)}, FeesConfig())


def test_an_unknown_symbol_names_the_known_ones() -> None:
    catalog = catalog_from_profile({}, FeesConfig())
    with pytest.raises(UnknownInstrument, match=r"unknown symbol 'BTC-PREP'.*BTC-PERP"):
        catalog.require(["BTC-PERP", "BTC-PREP"])


MARKETS = {
    "ETH/USDT:USDT": {
        "precision": {"price": 0.01, "amount": 0.001},
        "limits": {"amount": {"min": 0.001}, "cost": {"min": 20.0}},
        "contractSize": 1.0,
    },
    "XRP/USDT:USDT": {
        "precision": {"price": 4, "amount": 1},  # DECIMAL_PLACES mode
        "limits": {"amount": {"min": 0.1}, "cost": {"min": 5.0}},
    },
}


def test_exchange_instruments_take_the_exchanges_filters() -> None:
    eth = catalog_from_markets(MARKETS, ["ETH-PERP"], {}, FeesConfig())["ETH-PERP"]
    assert (eth.tick_size, eth.step_size, eth.min_quantity, eth.min_notional) == (
        0.01, 0.001, 0.001, 20.0,
    )  # fmt: skip
    assert eth.tiers[0] == (0.0, 0.005, 0.0)  # tiers still from the instrument data
    xrp = catalog_from_markets(MARKETS, ["XRP-PERP"], {}, FeesConfig(), decimal_places=True)
    assert (xrp["XRP-PERP"].tick_size, xrp["XRP-PERP"].step_size) == (0.0001, 0.1)
    with pytest.raises(UnknownInstrument, match="lists no market 'BTC/USDT:USDT'"):
        catalog_from_markets(MARKETS, ["BTC-PERP"], {}, FeesConfig())


def test_config_rejects_a_bad_tier_table_in_one_line() -> None:
    with pytest.raises(Exception, match="must start at notional 0"):
        load_settings("dev", {"instruments": {"BTC-PERP": {"tiers": [[5, 0.01, 0]]}}})


def test_zero_decimal_places_is_a_step_of_one() -> None:
    # DECIMAL_PLACES mode: amount precision 0 means whole units (step 1), price precision
    # 0 a tick of 1; it was read as "not given" and the built-in XRP step 0.1 was used
    markets = {
        "XRP/USDT:USDT": {
            "precision": {"price": 0, "amount": 0},
            "limits": {"amount": {"min": 1.0}, "cost": {"min": 5.0}},
        }
    }
    xrp = catalog_from_markets(markets, ["XRP-PERP"], {}, FeesConfig(), decimal_places=True)
    assert (xrp["XRP-PERP"].tick_size, xrp["XRP-PERP"].step_size) == (1.0, 1.0)


def test_a_market_id_given_for_a_symbol_names_the_ccxt_symbol() -> None:
    # BTCUSDT is Binance's market id, not ccxt's symbol: "the exchange lists no market
    # 'BTCUSDT'" was untrue and left the trader guessing what to write
    markets = {"BTC/USDT:USDT": {**MARKETS["ETH/USDT:USDT"], "id": "BTCUSDT"}}
    with pytest.raises(UnknownInstrument) as refused:
        catalog_from_markets(markets, ["BTCUSDT"], {}, FeesConfig())
    assert "'BTC/USDT:USDT'" in str(refused.value) and "BTC-PERP" in str(refused.value)
    profile = {"BTC-PERP": InstrumentConfig(exchange_symbol="BTCUSDT")}
    with pytest.raises(
        UnknownInstrument, match=r"ccxt names that market 'BTC/USDT:USDT': set .*exchange_symbol"
    ):
        catalog_from_markets(markets, ["BTC-PERP"], profile, FeesConfig())


@pytest.mark.parametrize(
    ("name", "kind", "said"),
    [
        ("BTC/USD:BTC", {"swap": True, "linear": False, "inverse": True}, "inverse"),
        ("BTC/USDT:USDT-250328", {"type": "future", "swap": False, "linear": True}, "future"),
    ],
)
def test_a_market_that_is_not_a_linear_perpetual_is_refused(
    name: str, kind: dict[str, bool], said: str
) -> None:
    # sizes, PnL and funding are those of a linear perpetual: an inverse contract (sized in
    # USD, settled in BTC) or a dated future was built like any market and mis-booked
    markets = {name: {**MARKETS["ETH/USDT:USDT"], **kind}}
    profile = {"BTC-PERP": InstrumentConfig(exchange_symbol=name)}
    with pytest.raises(InstrumentError, match=f"not a linear perpetual.*{said}"):
        catalog_from_markets(markets, ["BTC-PERP"], profile, FeesConfig())


def test_two_symbols_on_one_market_are_refused() -> None:
    # both would trade BTCUSDT: the exchange holds one position for it, which the live
    # venue's reconciliation could only give to one of them (the other's was "lost")
    profile = {"XBT-PERP": InstrumentConfig(exchange_symbol="ETH/USDT:USDT", tick_size=0.1,
                                            step_size=0.001)}  # fmt: skip
    with pytest.raises(InstrumentError, match=r"XBT-PERP.*'ETH/USDT:USDT'.*ETH-PERP"):
        catalog_from_markets(MARKETS, ["ETH-PERP", "XBT-PERP"], profile, FeesConfig())


@pytest.mark.parametrize(("decimal_places", "amount"), [(False, 1.0), (True, 0)])
def test_a_contract_market_gives_step_and_minimum_in_base_units(
    decimal_places: bool, amount: float
) -> None:
    # ccxt counts a contract market's amount precision and minimum in contracts; the bot
    # sizes orders in base units. A contract of 10 base units traded in whole contracts
    # had a step of 1 base unit: 15 was prepared, which the exchange refuses (1.5
    # contracts), and a dry run filled it
    markets = {
        "XRP/USDT:USDT": {
            "precision": {"price": 0.0001 if not decimal_places else 4, "amount": amount},
            "limits": {"amount": {"min": 1.0}, "cost": {"min": 5.0}},
            "contractSize": 10.0,
        }
    }
    xrp = catalog_from_markets(
        markets, ["XRP-PERP"], {}, FeesConfig(), decimal_places=decimal_places
    )["XRP-PERP"]
    assert (xrp.step_size, xrp.min_quantity, xrp.contract_size) == (10.0, 10.0, 10.0)
    assert xrp.prepare(Side.BUY, 15.0, OrderType.MARKET, None, False, 2.0).size == 10.0
    with pytest.raises(InstrumentRefusal, match="below the minimum quantity 10"):
        xrp.prepare(Side.BUY, 9.0, OrderType.MARKET, None, True, 2.0)


def test_the_maximum_quantities_come_from_the_markets() -> None:
    """ccxt's limits.amount.max (LOT_SIZE) and limits.market.max (MARKET_LOT_SIZE)."""
    market = MARKETS["ETH/USDT:USDT"]
    limits = {**market["limits"], "amount": {"min": 0.001, "max": 10000.0},
              "market": {"min": 0.001, "max": 2000.0}}  # fmt: skip
    markets = {"ETH/USDT:USDT": {**market, "limits": limits}}
    eth = catalog_from_markets(markets, ["ETH-PERP"], {}, FeesConfig())["ETH-PERP"]
    assert (eth.max_quantity, eth.max_market_quantity) == (10000.0, 2000.0)
    with pytest.raises(InstrumentRefusal, match="above the maximum quantity 2000"):
        eth.prepare(Side.BUY, 2000.5, OrderType.MARKET, None, False, 3000.0)
    btc = catalog_from_profile({}, FeesConfig())["BTC-PERP"]  # Binance's, built in
    assert (btc.max_quantity, btc.max_market_quantity) == (1000.0, 120.0)


@pytest.mark.parametrize("key", ["max_quantity", "max_market_quantity"])
def test_a_maximum_below_one_step_is_one_line(key: str) -> None:
    """A maximum order size below the step (or the minimum quantity) takes no order at
    all; a close split into orders within it crashed the run with ZeroDivisionError
    (Instrument.pieces: no whole step fits in the maximum). Refused in one line now."""
    bad = {"BTC-PERP": InstrumentConfig(**{key: 0.0005})}  # the step is 0.001
    with pytest.raises(InstrumentError, match=rf"instruments\.BTC-PERP\.{key}: 0.0005 is below"):
        catalog_from_profile(bad, FeesConfig())


def test_the_built_in_file_reads_the_same_through_libyaml_as_through_pure_python() -> None:
    text = resources.files("perps_bot.instruments").joinpath("data/builtin.yaml").read_text()
    data = yaml.load(text, Loader=catalog_module.SAFE_LOADER)
    assert data == yaml.load(text, Loader=yaml.SafeLoader)
    assert data["generic_tiers"]  # the file's own content, not an empty document
