"""A capture records the instruments its run traded (`storage.capture.instrument_config`)
and its replay trades them again (`config["instruments"]` of the replay's settings, SPEC
14): exactly, a maximum quantity the run had none of included.

Measured on main: an instrument without a maximum (an exchange market that gives none)
was recorded as `max_market_quantity: null`, which the replay's profile took as unset:
the built-in data's Binance maximum of BTC-PERP (120 BTC a market order) came back, and
the replay split or refused orders the dry run had sent whole."""

import dataclasses
from typing import Any

from perps_bot.config import load_settings
from perps_bot.domain.enums import MARKET
from perps_bot.instruments import InstrumentCatalog, builtin_instruments, catalog_from_profile
from perps_bot.storage.capture import instrument_config


def _replayed(recorded: dict[str, dict[str, Any]]) -> InstrumentCatalog:
    settings = load_settings("dev", {"instruments": recorded})
    return catalog_from_profile(settings.instruments, settings.fees)


def test_an_instrument_without_a_maximum_is_replayed_without_one() -> None:
    traded = dataclasses.replace(
        builtin_instruments()["BTC-PERP"], max_quantity=None, max_market_quantity=None
    )
    replayed = _replayed({"BTC-PERP": instrument_config(traded)})["BTC-PERP"]
    assert replayed == traded
    assert replayed.pieces(300.0, MARKET) == (300.0,)  # one order, as the dry run sent it


def test_a_recorded_maximum_is_replayed_as_recorded() -> None:
    traded = dataclasses.replace(
        builtin_instruments()["BTC-PERP"], max_quantity=50.0, max_market_quantity=None
    )
    replayed = _replayed({"BTC-PERP": instrument_config(traded)})["BTC-PERP"]
    assert (replayed.max_quantity, replayed.max_market_quantity) == (50.0, None)


def test_the_price_band_is_replayed_as_recorded() -> None:
    """A dry run on Binance refuses a limit price outside PERCENT_PRICE; so does its replay."""
    traded = dataclasses.replace(builtin_instruments()["BTC-PERP"], price_band=(1.05, 0.95))
    assert _replayed({"BTC-PERP": instrument_config(traded)})["BTC-PERP"] == traded
