"""create_exchange and symbol mapping, without any server (nothing here opens a socket)."""

import logging

import ccxt.async_support as ccxt_async
import pytest

from perps_bot.config.models import ExchangeConfig
from perps_bot.exchange import (
    ExchangeSetupError,
    from_exchange_symbol,
    from_market_id,
    to_exchange_symbol,
    to_market_id,
)
from perps_bot.exchange.client import create_exchange

LOOPBACK = "http://127.0.0.1:8900"
REAL_FAPI = "https://fapi.binance.com/fapi/v1/order"


async def test_private_client_requires_both_keys() -> None:
    with pytest.raises(ExchangeSetupError, match="PERPS_BOT__EXCHANGE__API_KEY"):
        create_exchange(ExchangeConfig(api_key="only-key"), private=True)
    with pytest.raises(ExchangeSetupError, match="API_SECRET"):
        create_exchange(ExchangeConfig(api_key="", api_secret="s"), private=True)


async def test_private_client_gets_keys_and_never_logs_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    ex = create_exchange(
        ExchangeConfig(api_key="KEY-abc123", api_secret="SECRET-xyz789"), private=True
    )
    try:
        assert (ex.apiKey, ex.secret) == ("KEY-abc123", "SECRET-xyz789")
        assert "KEY-abc123" not in caplog.text and "SECRET-xyz789" not in caplog.text
    finally:
        await ex.close()


async def test_dry_run_client_has_no_credentials_even_when_configured() -> None:
    ex = create_exchange(ExchangeConfig(api_key="k", api_secret="s"), private=False)
    try:
        assert not ex.apiKey and not ex.secret
        with pytest.raises(ccxt_async.AuthenticationError):
            ex.check_required_credentials()
    finally:
        await ex.close()


async def test_defaults_for_the_real_exchange() -> None:
    ex = create_exchange(ExchangeConfig(timeout_ms=1234), private=False)
    try:
        assert ex.id == "binanceusdm"
        assert ex.enableRateLimit is True
        assert ex.timeout == 1234
        assert ex.options["fetchCurrencies"] is False
        assert ex.options["warnOnFetchOpenOrdersWithoutSymbol"] is False
        assert ex.urls["api"]["fapiPrivate"].startswith("https://fapi.binance.com/")
    finally:
        await ex.close()


def _all_urls(tree: object) -> list[str]:
    if isinstance(tree, str):
        return [tree]
    if isinstance(tree, dict):
        return [url for value in tree.values() for url in _all_urls(value)]
    return []


async def test_base_url_rewrites_every_rest_and_ws_url_and_disables_rate_limit() -> None:
    ex = create_exchange(ExchangeConfig(base_url=LOOPBACK, use_websocket=True), private=False)
    try:
        api = ex.urls["api"]
        for key in [k for k in api if k.startswith("fapi")]:
            assert api[key].startswith(LOOPBACK + "/"), key
        assert {
            "fapiPublic",
            "fapiPublicV2",
            "fapiPublicV3",
            "fapiPrivate",
            "fapiPrivateV2",
            "fapiPrivateV3",
            "fapiData",
        } <= set(api)
        assert api["fapiPrivateV3"] == LOOPBACK + "/fapi/v3"
        assert api["fapiData"] == LOOPBACK + "/futures/data"
        assert api["ws"]["linear"] == "ws://127.0.0.1:8900/ws"
        assert ex.get_ws_url("linear", "public") == "ws://127.0.0.1:8900/public/ws"
        # nothing may still point at a real host
        for url in _all_urls(api):
            assert url.startswith(("http://127.0.0.1:8900/", "ws://127.0.0.1:8900/")), url
        assert ex.enableRateLimit is False
    finally:
        await ex.close()


async def test_loopback_urls_map_error_codes_exactly_like_the_real_futures_urls() -> None:
    ex = create_exchange(ExchangeConfig(base_url=LOOPBACK), private=False)
    real = ccxt_async.binanceusdm()
    try:
        for kind in ("exact", "broad"):
            expected = real.get_exceptions_by_url(REAL_FAPI, kind)
            assert ex.get_exceptions_by_url(LOOPBACK + "/fapi/v1/order", kind) == expected
        table = ex.get_exceptions_by_url(LOOPBACK + "/fapi/v1/order", "exact")
        assert table["-2019"] is ccxt_async.InsufficientFunds
        assert table["-2022"] is ccxt_async.InvalidOrder
        assert table["-4164"] is ccxt_async.InvalidOrder
        assert table["-4116"] is ccxt_async.InvalidOrder
        # and the pitfall the wrapper fixes: plain ccxt would find no futures table
        plain = ccxt_async.binanceusdm()
        plain.urls["api"]["fapiPrivate"] = LOOPBACK + "/fapi/v1"
        assert plain.get_exceptions_by_url(LOOPBACK + "/fapi/v1/order", "exact") == {}
    finally:
        await ex.close()
        await real.close()


async def test_demo_uses_ccxt_demo_trading_urls() -> None:
    ex = create_exchange(ExchangeConfig(demo=True), private=False)
    try:
        assert ex.options["enableDemoTrading"] is True
        assert ex.urls["api"]["fapiPrivate"].startswith("https://demo-fapi.binance.com/")
    finally:
        await ex.close()


async def test_demo_and_base_url_keep_linear_error_mapping() -> None:
    ex = create_exchange(ExchangeConfig(demo=True, base_url=LOOPBACK), private=False)
    try:
        assert ex.urls["api"]["fapiPrivate"] == LOOPBACK + "/fapi/v1"
        table = ex.get_exceptions_by_url(LOOPBACK + "/fapi/v1/order", "exact")
        assert table["-2019"] is ccxt_async.InsufficientFunds
    finally:
        await ex.close()


@pytest.mark.parametrize(
    "cfg, message",
    [
        (ExchangeConfig(name="no_such_exchange"), "not an exchange id"),
        (ExchangeConfig(base_url="127.0.0.1:8900"), "must look like"),
        (ExchangeConfig(base_url="ftp://127.0.0.1"), "must look like"),
        (ExchangeConfig(base_url="http://127.0.0.1:8900/?x=1"), "must look like"),
        (ExchangeConfig(name="kraken", demo=True), "no demo environment"),
    ],
)
def test_bad_setup_is_one_line_error(cfg: ExchangeConfig, message: str) -> None:
    with pytest.raises(ExchangeSetupError, match=message) as info:
        create_exchange(cfg, private=False)
    assert "\n" not in str(info.value)


def test_symbol_mapping_default_rule_and_map() -> None:
    assert to_exchange_symbol("BTC-PERP") == "BTC/USDT:USDT"
    assert to_exchange_symbol("SOL-PERP") == "SOL/USDT:USDT"
    assert from_exchange_symbol("SOL/USDT:USDT") == "SOL-PERP"
    assert to_market_id("BTC-PERP") == "BTCUSDT"
    assert from_market_id("ETHUSDT") == "ETH-PERP"
    mapping = {"XBT-PERP": "BTC/USDC:USDC"}  # an instrument's exchange_symbol
    assert to_exchange_symbol("XBT-PERP", mapping) == "BTC/USDC:USDC"
    assert from_exchange_symbol("BTC/USDC:USDC", mapping) == "XBT-PERP"
    assert to_market_id("XBT-PERP", mapping) == "BTCUSDC"
    assert from_market_id("BTCUSDC", mapping) == "XBT-PERP"


@pytest.mark.parametrize("bad", ["BTCUSDT", "-PERP", "BTC"])
def test_unmappable_symbol_is_setup_error(bad: str) -> None:
    with pytest.raises(ExchangeSetupError, match="exchange_symbol"):
        to_exchange_symbol(bad)


def test_unmappable_exchange_symbol_is_setup_error() -> None:
    with pytest.raises(ExchangeSetupError):
        from_exchange_symbol("BTC/USD:BTC")
    with pytest.raises(ExchangeSetupError):
        from_exchange_symbol("BTCUSDT")
