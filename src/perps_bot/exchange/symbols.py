"""Mapping between our symbols (``BTC-PERP``) and ccxt's (``BTC/USDT:USDT``, id ``BTCUSDT``).

An instrument's ``exchange_symbol`` (perps_bot.instruments) wins; a symbol without one
follows one rule, ``X-PERP`` <-> ``X/USDT:USDT`` (a USDT-margined linear perpetual), because that
is what every perp we trade on binanceusdm is. The market id (``BTCUSDT``) is derived
from the ccxt symbol as base + quote, which is how Binance USDM names perpetuals; it
is used by the loopback emulator and in log lines, never to talk to ccxt (ccxt takes
the unified symbol).

Every function takes an optional mapping of our symbol -> ccxt symbol (the instruments'
exchange symbols); without it only the default rule applies.
"""

from collections.abc import Mapping

from perps_bot.exchange.errors import ExchangeSetupError

PERP_SUFFIX = "-PERP"
DEFAULT_QUOTE = "USDT"

SymbolMapSource = Mapping[str, str] | None


def _symbol_map(source: SymbolMapSource) -> Mapping[str, str]:
    return {} if source is None else source


def to_exchange_symbol(symbol: str, symbol_map: SymbolMapSource = None) -> str:
    """``BTC-PERP`` -> ``BTC/USDT:USDT`` (map entry first, then the default rule)."""
    mapping = _symbol_map(symbol_map)
    if symbol in mapping:
        return mapping[symbol]
    if symbol.endswith(PERP_SUFFIX) and len(symbol) > len(PERP_SUFFIX):
        base = symbol[: -len(PERP_SUFFIX)]
        return f"{base}/{DEFAULT_QUOTE}:{DEFAULT_QUOTE}"
    raise ExchangeSetupError(
        f"cannot map symbol {symbol!r} to the exchange: give its instrument an exchange_symbol "
        f"or name it like BTC-PERP"
    )


def from_exchange_symbol(ccxt_symbol: str, symbol_map: SymbolMapSource = None) -> str:
    """``BTC/USDT:USDT`` -> ``BTC-PERP`` (reverse map entry first, then the default rule)."""
    for ours, theirs in _symbol_map(symbol_map).items():
        if theirs == ccxt_symbol:
            return ours
    base, quote, settle = _split_ccxt_symbol(ccxt_symbol)
    if quote == DEFAULT_QUOTE and settle == DEFAULT_QUOTE:
        return f"{base}{PERP_SUFFIX}"
    raise ExchangeSetupError(
        f"cannot map exchange symbol {ccxt_symbol!r} back: no instrument has it as exchange_symbol"
    )


def to_market_id(symbol: str, symbol_map: SymbolMapSource = None) -> str:
    """Our symbol -> exchange market id: ``BTC-PERP`` -> ``BTCUSDT``."""
    base, quote, _ = _split_ccxt_symbol(to_exchange_symbol(symbol, symbol_map))
    return f"{base}{quote}"


def from_market_id(market_id: str, symbol_map: SymbolMapSource = None) -> str:
    """Exchange market id -> our symbol: ``BTCUSDT`` -> ``BTC-PERP``."""
    for ours, theirs in _symbol_map(symbol_map).items():
        base, quote, _ = _split_ccxt_symbol(theirs)
        if f"{base}{quote}" == market_id:
            return ours
    if market_id.endswith(DEFAULT_QUOTE) and len(market_id) > len(DEFAULT_QUOTE):
        return f"{market_id[: -len(DEFAULT_QUOTE)]}{PERP_SUFFIX}"
    raise ExchangeSetupError(f"cannot map market id {market_id!r}: no instrument trades it")


def _split_ccxt_symbol(ccxt_symbol: str) -> tuple[str, str, str]:
    pair, _, settle = ccxt_symbol.partition(":")
    base, slash, quote = pair.partition("/")
    if not slash or not base or not quote or not settle:
        raise ExchangeSetupError(
            f"exchange symbol {ccxt_symbol!r} is not a ccxt perpetual like BTC/USDT:USDT"
        )
    return base, quote, settle
