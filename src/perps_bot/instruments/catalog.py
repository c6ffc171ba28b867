"""The instrument catalog of a run, and how a profile's `instruments:` section combines
with the built-in data (`data/builtin.yaml`): per symbol and per key, the profile wins.

Fees: an instrument without its own maker/taker bps uses the profile's `fees:`
section, which is the account's fee schedule; tiers: without its own table, the
generic table of the built-in data.
"""

from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from importlib import resources
from typing import Any

import yaml

from perps_bot.config import FeesConfig, InstrumentConfig, check_tiers
from perps_bot.domain import Instrument, PerpsBotError, TierRow, short
from perps_bot.exchange import ExchangeSetupError, to_exchange_symbol

_REQUIRED = ("tick_size", "step_size")
#: the keys whose explicit null in a profile means "no limit" rather than "unset"
_NO_LIMIT = ("max_quantity", "max_market_quantity", "max_algo_orders")


class InstrumentError(PerpsBotError):
    """Instrument data that cannot be used (incomplete, malformed); one line."""


class UnknownInstrument(PerpsBotError):
    """A symbol with no instrument: refused, never traded as a made-up market."""


class InstrumentCatalog(Mapping[str, Instrument]):
    """Instruments by our symbol (BTC-PERP); also found by the exchange's symbol."""

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self._by_symbol = {i.symbol: i for i in instruments}
        self._by_exchange = {i.exchange_symbol: i for i in self._by_symbol.values()}

    def __getitem__(self, symbol: str) -> Instrument:
        return self._by_symbol[symbol]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_symbol)

    def __len__(self) -> int:
        return len(self._by_symbol)

    def require(self, symbols: Iterable[str]) -> "InstrumentCatalog":
        """The catalog of just `symbols`; UnknownInstrument naming the first unknown one."""
        wanted = list(symbols)
        for symbol in wanted:
            if symbol not in self._by_symbol:
                known = ", ".join(sorted(self._by_symbol)) or "none"
                raise UnknownInstrument(
                    f"unknown symbol {short(symbol)!r}: no instrument for it (known: {known}); "
                    "add it under instruments: in the profile"
                )
        return InstrumentCatalog(self._by_symbol[s] for s in wanted)

    def by_exchange_symbol(self, exchange_symbol: str) -> Instrument | None:
        return self._by_exchange.get(exchange_symbol)


#: libyaml's parser where PyYAML has it (the wheels do), else the pure one: the same
#: data, and the built-in file, read by every run, parses in a tenth of the time
#: (about 0.5 ms instead of 5). Only for this file of ours: a profile is read by the
#: pure loader, which bounds its nesting (config.profile_yaml).
SAFE_LOADER: type[yaml.SafeLoader | yaml.CSafeLoader] = getattr(
    yaml, "CSafeLoader", yaml.SafeLoader
)


@cache
def _builtin_data() -> dict[str, Any]:
    text = resources.files("perps_bot.instruments").joinpath("data/builtin.yaml").read_text()
    data: dict[str, Any] = yaml.load(text, Loader=SAFE_LOADER)
    return data


def generic_tiers() -> tuple[TierRow, ...]:
    """The maintenance table of an instrument that does not give its own."""
    return _tiers("generic_tiers", _builtin_data()["generic_tiers"])


def effective_instrument_data(
    profile: Mapping[str, InstrumentConfig],
) -> dict[str, dict[str, Any]]:
    """Built-in data with the profile's entries laid over it, key by key (None = unset),
    but a maximum quantity the profile sets to null explicitly is none: no limit, as a
    capture records an instrument without one (its replay must not trade the built-in's)."""
    merged: dict[str, dict[str, Any]] = {
        symbol: dict(values) for symbol, values in _builtin_data()["instruments"].items()
    }
    for symbol, cfg in profile.items():
        unlimited = {
            k: None for k in _NO_LIMIT if k in cfg.model_fields_set and getattr(cfg, k) is None
        }
        merged[symbol] = merged.get(symbol, {}) | cfg.model_dump(exclude_none=True) | unlimited
    return merged


def build_instrument(symbol: str, values: Mapping[str, Any], fees: FeesConfig) -> Instrument:
    """An Instrument from merged data; InstrumentError when a required key is missing."""
    missing = [key for key in _REQUIRED if values.get(key) is None]
    if missing:
        raise InstrumentError(
            f"instruments.{symbol}: {' and '.join(missing)} required (tick_size, step_size,"
            " min_quantity, min_notional describe the contract)"
        )
    tiers_data = values.get("tiers")
    tiers = generic_tiers() if tiers_data is None else _tiers(symbol, tiers_data)
    step = float(values["step_size"])
    least = max(step, float(values.get("min_quantity", step)))
    for key in ("max_quantity", "max_market_quantity"):  # below one order: none could go
        most = values.get(key)
        if most is not None and float(most) < least * (1 - 1e-9):
            raise InstrumentError(
                f"instruments.{symbol}.{key}: {float(most):g} is below the step or minimum"
                f" quantity ({least:g}): no order could be sent"
            )
    return Instrument(
        symbol=symbol,
        exchange_symbol=str(values.get("exchange_symbol") or default_exchange_symbol(symbol)),
        tick_size=float(values["tick_size"]),
        step_size=step,
        min_quantity=float(values.get("min_quantity", step)),
        min_notional=float(values.get("min_notional", 0.0)),
        tiers=tiers,
        maker_bps=float(values.get("maker_bps", fees.maker_bps)),
        taker_bps=float(values.get("taker_bps", fees.taker_bps)),
        contract_size=float(values.get("contract_size", 1.0)),
        max_quantity=_optional(values.get("max_quantity")),
        max_market_quantity=_optional(values.get("max_market_quantity")),
        max_algo_orders=_optional_count(values.get("max_algo_orders")),
        price_band=_band(values.get("price_multiplier_up"), values.get("price_multiplier_down")),
    )


def _band(up: Any, down: Any) -> tuple[float, float] | None:
    """The PERCENT_PRICE band; none unless both multipliers are given."""
    return None if up is None or down is None else (float(up), float(down))


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)


def _optional_count(value: Any) -> int | None:
    return None if value is None else int(value)


def catalog_from_profile(
    profile: Mapping[str, InstrumentConfig], fees: FeesConfig
) -> InstrumentCatalog:
    """Every instrument the profile and the built-in data describe (dev, backtest)."""
    data = effective_instrument_data(profile)
    return InstrumentCatalog(build_instrument(s, v, fees) for s, v in sorted(data.items()))


def builtin_instruments(fees: FeesConfig | None = None) -> InstrumentCatalog:
    """The built-in catalog alone (tests and tools that have no profile)."""
    return catalog_from_profile({}, fees or FeesConfig())


def _tiers(symbol: str, rows: Any) -> tuple[TierRow, ...]:
    try:
        tiers = [(float(a), float(b), float(c)) for a, b, c in rows]
        check_tiers(tiers)
    except (TypeError, ValueError) as exc:
        raise InstrumentError(f"instruments.{symbol}.tiers: {exc}") from exc
    return tuple(tiers)


def default_exchange_symbol(symbol: str) -> str:
    """The X-PERP -> X/USDT:USDT rule; a name it cannot map stays itself (paper only)."""
    try:
        return to_exchange_symbol(symbol)
    except ExchangeSetupError:
        return symbol  # a paper-only name: no exchange ever sees it
