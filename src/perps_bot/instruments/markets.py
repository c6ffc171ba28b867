"""Instruments of an exchange run, from the markets ccxt loaded (`load_markets`).

The exchange is the truth for what it accepts: tick and step (ccxt's `precision`,
which is a step in TICK_SIZE mode and a number of decimals in DECIMAL_PLACES mode),
minimum quantity (`limits.amount.min`), minimum notional (`limits.cost.min`) and
contract size. ccxt counts a contract market's step and minimum quantity in contracts;
the instrument holds them in base units (times the contract size), as every size in the
bot is. The profile and the built-in data still give what markets do not
carry without private calls: the maintenance tiers (Binance's leverageBracket is a
signed endpoint, and a dry run has no keys), the fee schedule of the account, and the
exchange symbol each of our symbols maps to.
"""

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from perps_bot.config import FeesConfig, InstrumentConfig
from perps_bot.domain import short
from perps_bot.domain.numbers import finite_number
from perps_bot.exchange import ExchangeSetupError, from_exchange_symbol
from perps_bot.instruments.catalog import (
    InstrumentCatalog,
    InstrumentError,
    UnknownInstrument,
    build_instrument,
    default_exchange_symbol,
    effective_instrument_data,
)


def catalog_from_markets(
    markets: Mapping[str, Any],
    symbols: Iterable[str],
    profile: Mapping[str, InstrumentConfig],
    fees: FeesConfig,
    *,
    decimal_places: bool = False,
) -> InstrumentCatalog:
    """Instruments for `symbols` from ccxt `markets`; UnknownInstrument for a symbol the
    exchange does not list or does not trade. `decimal_places`: ccxt's precisionMode is
    DECIMAL_PLACES."""
    data = effective_instrument_data(profile)
    built = []
    taken: dict[str, str] = {}  # exchange symbol -> our symbol trading it
    for symbol in symbols:
        values = dict(data.get(symbol, {}))
        exchange_symbol = str(values.get("exchange_symbol") or default_exchange_symbol(symbol))
        if taken.setdefault(exchange_symbol, symbol) != symbol:
            # the exchange nets both into one position, which reconciliation can give
            # to one symbol only
            raise InstrumentError(
                f"instruments.{short(symbol)}: exchange_symbol {short(exchange_symbol)!r} is"
                f" already traded as {short(taken[exchange_symbol])}: one market, one symbol"
            )
        market = markets.get(exchange_symbol)
        if not isinstance(market, Mapping):
            raise UnknownInstrument(_not_listed(symbol, exchange_symbol, markets))
        _require_trading(symbol, exchange_symbol, market)
        _require_linear_perpetual(symbol, exchange_symbol, market)
        found = _filters(market, decimal_places)
        given = _given(profile.get(symbol))
        _require_agreement(symbol, exchange_symbol, given, found)
        # the exchange's filters or none: the built-in data's are Binance's (a profile's
        # own stand where the market gives none)
        values = {k: v for k, v in values.items() if k not in _FILTERS or k in given}
        values |= found
        values["exchange_symbol"] = exchange_symbol
        built.append(build_instrument(symbol, values, fees))
    return InstrumentCatalog(built)


#: the instrument keys an exchange's market gives (`_filters`)
_FILTERS = (
    "tick_size",
    "step_size",
    "min_quantity",
    "min_notional",
    "contract_size",
    "max_quantity",
    "max_market_quantity",
    "max_algo_orders",
    "price_multiplier_up",
    "price_multiplier_down",
)


def _given(cfg: InstrumentConfig | None) -> dict[str, float | None]:
    """The filter values a profile's instrument states itself (null: no maximum)."""
    if cfg is None:
        return {}
    stated = {k: getattr(cfg, k) for k in _FILTERS if k in cfg.model_fields_set}
    return {k: v for k, v in stated.items() if v is not None or k.startswith("max_")}


def _require_agreement(
    symbol: str,
    exchange_symbol: str,
    given: Mapping[str, float | None],
    found: Mapping[str, float],
) -> None:
    """InstrumentError when the profile states a filter the exchange's market has
    otherwise: the run would trade the exchange's, not the one the profile (and every
    backtest of it) describes. A key the market does not give is the profile's."""
    for key, stated in given.items():
        actual = found.get(key)
        if actual is None:  # the market gives none: the profile's stands
            continue
        if stated is not None and _same(stated, actual):
            continue
        raise InstrumentError(
            f"instruments.{short(symbol)}.{key}: the profile says {_shown(stated)}, the"
            f" exchange's market {short(exchange_symbol)!r} {_shown(actual)}; remove it from"
            " the profile or set the exchange's value"
        )


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def _shown(value: float | None) -> str:
    return "no limit" if value is None else f"{value:g}"


def _not_listed(symbol: str, exchange_symbol: str, markets: Mapping[str, Any]) -> str:
    """Why `symbol` has no market; when the name looked up is the exchange's market id
    (BTCUSDT) rather than ccxt's symbol, which symbol that market has and what to write."""
    head = f"unknown symbol {short(symbol)!r}:"
    found = next((name for name, m in markets.items() if _has_id(m, exchange_symbol)), None)
    if found is None:
        return f"{head} the exchange lists no market {short(exchange_symbol)!r}"
    said = f"{head} {short(exchange_symbol)!r} is a market id, ccxt names that market {found!r}"
    if exchange_symbol != symbol:
        return f"{said}: set the instrument's exchange_symbol to it"
    try:
        return f"{said}: name the symbol {from_exchange_symbol(found)}"
    except ExchangeSetupError:
        return f"{said}: give the instrument exchange_symbol {found!r}"


def _has_id(market: Any, market_id: str) -> bool:
    return isinstance(market, Mapping) and market.get("id") == market_id


def _require_trading(symbol: str, exchange_symbol: str, market: Mapping[str, Any]) -> None:
    """UnknownInstrument for a market ccxt marks inactive (Binance: status other than
    TRADING, i.e. delisted, settling or not open yet): its book is frozen and every order
    would be rejected. ccxt's None (an exchange that does not say) is taken as trading."""
    if market.get("active") is not False:
        return
    info = market.get("info")
    status = info.get("status") if isinstance(info, Mapping) else None
    said = f" (status {short(str(status))})" if status is not None else ""
    raise UnknownInstrument(
        f"unknown symbol {short(symbol)!r}: the exchange's market {short(exchange_symbol)!r}"
        f" is not trading{said}"
    )


def _require_linear_perpetual(symbol: str, exchange_symbol: str, market: Mapping[str, Any]) -> None:
    """InstrumentError for a market ccxt says is not a linear perpetual: sizes, PnL and
    funding are booked as for one (an inverse contract is sized in USD and settled in the
    base coin; a dated future has no funding). A flag ccxt leaves unset passes."""
    if market.get("swap") is not False and market.get("linear") is not False:
        return
    kind = "inverse" if market.get("linear") is False else str(market.get("type") or "no swap")
    raise InstrumentError(
        f"instruments.{short(symbol)}: the exchange's market {short(exchange_symbol)!r} is"
        f" not a linear perpetual ({kind}); perps-bot trades linear perpetuals only"
    )


def _filters(market: Mapping[str, Any], decimal_places: bool) -> dict[str, float]:
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    found: dict[str, float] = {}
    contract = _positive(market.get("contractSize"))
    if contract is not None:
        found["contract_size"] = contract
    # ccxt counts amounts (precision, limits) in contracts; the bot in base units
    per_contract = Decimal(repr(contract if contract is not None else 1.0))
    for key, field in (("price", "tick_size"), ("amount", "step_size")):
        step = (_decimals_step if decimal_places else _positive)(precision.get(key))
        if step is not None:
            found[field] = step if key == "price" else _in_base(step, per_contract)
    min_qty = _positive((limits.get("amount") or {}).get("min"))
    if min_qty is not None:
        found["min_quantity"] = _in_base(min_qty, per_contract)
    for key, field in (("amount", "max_quantity"), ("market", "max_market_quantity")):
        most = _positive((limits.get(key) or {}).get("max"))
        if most is not None:
            found[field] = _in_base(most, per_contract)
    min_cost = _positive((limits.get("cost") or {}).get("min"))
    found["min_notional"] = min_cost if min_cost is not None else 0.0
    found |= _percent_price(market.get("info"))
    algo = _info_filter(market.get("info"), "MAX_NUM_ALGO_ORDERS")
    most = _positive(algo.get("limit")) if algo is not None else None
    if most is not None and most.is_integer():  # ccxt does not unify it
        found["max_algo_orders"] = most
    return found


def _percent_price(info: Any) -> dict[str, float]:
    """Binance's PERCENT_PRICE filter (ccxt does not unify it): the limit price band
    around the mark; nothing when the market has none."""
    row = _info_filter(info, "PERCENT_PRICE")
    if row is not None:
        up, down = _positive(row.get("multiplierUp")), _positive(row.get("multiplierDown"))
        if up is not None and down is not None:
            return {"price_multiplier_up": up, "price_multiplier_down": down}
    return {}


def _info_filter(info: Any, kind: str) -> Mapping[str, Any] | None:
    """The exchange's own filter row of `kind` in a market's `info` (Binance's
    exchangeInfo filters); None when it has none."""
    filters = info.get("filters") if isinstance(info, Mapping) else None
    for row in filters if isinstance(filters, list) else ():
        if isinstance(row, Mapping) and row.get("filterType") == kind:
            return row
    return None


def _in_base(contracts: float, per_contract: Decimal) -> float:
    """A quantity of contracts in base units, exactly (0.001 contracts of 0.1: 0.0001)."""
    return float(Decimal(repr(contracts)) * per_contract)


def _decimals_step(value: Any) -> float | None:
    """The step of a DECIMAL_PLACES precision: 0 decimals is a step of 1 (whole units,
    common for cheap coins), -1 a step of 10; None when not a whole number."""
    number = finite_number(value)
    return 10.0 ** -int(number) if number is not None and number.is_integer() else None


def _positive(value: Any) -> float | None:
    number = finite_number(value)
    return number if number is not None and number > 0 else None
