"""Everything a run checks before it writes anything (a run that fails here leaves no
trace in the store): the strategy loads and takes its parameters, prod has a
promotion for this exact strategy, and every symbol has an instrument (from the
exchange's markets for exchange modes, reached within `exchange.startup_timeout`,
else from the profile).

A failure is a PerpsBotError: one line, exit code 2.
"""

import logging
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from perps_bot import __version__
from perps_bot.config import PortfolioPlan, Settings
from perps_bot.config.canary import CANARY
from perps_bot.domain import PerpsBotError, RunMode, short
from perps_bot.exchange.runtime import close_quietly
from perps_bot.instruments import (
    InstrumentCatalog,
    InstrumentError,
    UnknownInstrument,
    catalog_from_markets,
    catalog_from_profile,
    effective_instrument_data,
)
from perps_bot.instruments.catalog import default_exchange_symbol
from perps_bot.orchestrator.modes import MODES, ModeSpec
from perps_bot.storage import RunStore
from perps_bot.strategies import Strategy, load_strategy, strategy_fingerprint

log = logging.getLogger("perps_bot.run")


class PromotionMissing(PerpsBotError):
    """prod refuses a strategy fingerprint that was never promoted to prod."""


@dataclass(frozen=True, slots=True)
class PlannedPortfolio:
    """A portfolio of the run with its strategy class and fingerprint (SPEC 10)."""

    plan: PortfolioPlan
    strategy_cls: type[Strategy]
    fingerprint: str
    #: the fingerprint without the data among its inputs (a plan file, a prompt): what
    #: --resume compares
    code_fingerprint: str


@dataclass(slots=True)
class Preflight:
    """What the checks established, for the wiring to use."""

    spec: ModeSpec
    portfolios: list[PlannedPortfolio]
    code_version: str
    instruments: InstrumentCatalog
    public_client: Any  # ccxt client with markets loaded (exchange modes), else None

    @property
    def mode(self) -> RunMode:
        return self.spec.mode

    @property
    def strategy_cls(self) -> type[Strategy]:
        """The (first) portfolio's strategy class."""
        return self.portfolios[0].strategy_cls

    @property
    def fingerprint(self) -> str:
        """The (first) portfolio's strategy fingerprint."""
        return self.portfolios[0].fingerprint

    async def close(self) -> None:
        """Release what preflight opened, when the run does not take it over."""
        if self.public_client is not None:
            await close_quietly(self.public_client)
            self.public_client = None


async def preflight(settings: Settings, *, say: Callable[[str], None]) -> Preflight:
    """Run every check; `say` shows progress to the user (waiting for an exchange)."""
    spec = MODES[settings.mode]
    portfolios = planned_portfolios(settings)
    require_prod_promotions(settings, portfolios)
    symbols = settings.symbols
    catalog = profile_catalog(settings)
    if catalog is not None:
        return Preflight(spec, portfolios, __version__, catalog, None)
    _require_whole_leverage(settings)
    # ccxt only for exchange modes (a second and 70 MB that backtests never pay)
    from perps_bot.exchange.client import create_exchange
    from perps_bot.exchange.startup import load_markets_within, where

    client = create_exchange(settings.exchange, private=False)
    try:
        say(
            f"connecting to {where(settings.exchange)} (giving up after"
            f" {settings.exchange.startup_timeout}) ..."
        )
        markets = await load_markets_within(client, settings.exchange)
        decimal_places = _counts_decimal_places(client, settings.exchange.name)
        catalog = catalog_from_markets(
            markets, symbols, settings.instruments, settings.fees, decimal_places=decimal_places
        )
        _check_symbol_keys(settings, _exchange_known(settings, markets), instruments=True)
    except BaseException:
        await close_quietly(client)
        raise
    return Preflight(spec, portfolios, __version__, catalog, client)


def planned_portfolios(settings: Settings) -> list[PlannedPortfolio]:
    """The run's portfolios with their strategy classes and fingerprints (a strategy
    that does not load is a PerpsBotError)."""
    planned = []
    for plan in settings.portfolio_plans():
        cls = load_strategy(plan.strategy)
        fingerprint, code = (
            strategy_fingerprint(
                cls,
                plan.params,
                __version__,
                timeframe=settings.strategy.timeframe,
                llm=settings.llm,
                inputs=inputs,
            )
            for inputs in (True, False)
        )
        planned.append(PlannedPortfolio(plan, cls, fingerprint, code))
    return planned


def require_prod_promotions(settings: Settings, portfolios: list[PlannedPortfolio]) -> None:
    """PromotionMissing unless every portfolio's strategy of a run that sends real orders
    has a promotion to prod; the canary needs none (it trades under hard caps:
    config.canary). The CLI's runs and the server's live sessions ask it alike."""
    if not MODES[settings.mode].real_orders or settings.profile == CANARY:
        return
    for planned in portfolios:
        _require_prod_promotion(settings, planned.plan.strategy, planned.fingerprint)


def profile_catalog(settings: Settings) -> InstrumentCatalog | None:
    """The instruments of a run whose mode takes them from the profile (checked with no
    network: the session server refuses a paper session's unknown symbol with a 400
    before it starts), None when they come from the exchange's markets; UnknownInstrument
    naming the first symbol with none."""
    if MODES[settings.mode].exchange_instruments:
        return None
    catalog = catalog_from_profile(settings.instruments, settings.fees)
    _check_symbol_keys(settings, set(catalog) | set(settings.symbols), instruments=False)
    required = catalog.require(settings.symbols)
    for symbol in settings.symbols:
        _require_base_unit_contract(required[symbol].contract_size, symbol, settings.mode)
    return required


def _require_base_unit_contract(contract_size: float, symbol: str, mode: RunMode) -> None:
    """InstrumentError for a contract size other than 1 in a run whose instruments come
    from the profile. A contract size is how an exchange counts an order (contracts of
    that many base units); a paper venue has no exchange to count for, sizes, steps,
    minimums and PnL are base units everywhere, so it changed nothing: a profile copying
    an exchange's step of 1 contract of 10 traded steps of 1, silently."""
    if contract_size != 1.0:
        raise InstrumentError(
            f"instruments.{short(symbol)}: contract_size {contract_size:g} means nothing in a"
            f" {mode} run (sizes, step_size and min_quantity are base units; a contract size"
            " comes from the exchange's markets): give step_size and min_quantity in base"
            " units and leave contract_size out"
        )


def _symbol_keys(settings: Settings, *, instruments: bool) -> Iterator[tuple[str, str]]:
    """(setting, symbol) for every per-symbol key of the profile."""
    for symbol in settings.strategy.order_size:
        yield "strategy.order_size", symbol
    for portfolio in settings.portfolios:
        for symbol in portfolio.order_size:
            yield f"portfolios.{portfolio.id}.order_size", symbol
    for symbol in settings.account.leverage:
        yield "account.leverage", symbol
    for symbol in settings.mock.symbols:
        yield "mock.symbols", symbol
    for symbol in settings.instruments if instruments else ():
        yield "instruments", symbol


def _check_symbol_keys(settings: Settings, known: Collection[str], *, instruments: bool) -> None:
    """A per-symbol key naming no symbol the run knows (a typo: BTC-PREP, btc-perp) is
    refused: it was silently ignored, and the run traded default_order_size (1 unit) or
    the default leverage instead. `instruments`: check the `instruments:` keys as well
    (a profile mode's entry defines an instrument of its own; one differing only in case
    from a known symbol is a typo all the same)."""
    for where, symbol in _symbol_keys(settings, instruments=True):
        if where == "instruments" and not instruments:
            if not any(s != symbol and s.casefold() == symbol.casefold() for s in known):
                continue
        elif symbol in known:
            continue
        traded = ", ".join(settings.symbols)
        raise UnknownInstrument(
            f"{where}: unknown symbol {short(symbol)!r} (this run trades {traded};"
            f" instruments known: {_listed(known)})"
        )


def _listed(symbols: Collection[str], most: int = 8) -> str:
    names = sorted(symbols)
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def _exchange_known(settings: Settings, markets: Mapping[str, Any]) -> set[str]:
    """Symbols of an exchange run: traded, in the built-in data, or listed in the
    exchange's markets (an `instruments:` entry of its own does not make a symbol known
    here: its filters come from the markets)."""
    data = effective_instrument_data(settings.instruments)
    known = set(settings.symbols) | set(effective_instrument_data({}))
    for _, symbol in _symbol_keys(settings, instruments=True):
        exchange_symbol = data.get(symbol, {}).get("exchange_symbol")
        if (exchange_symbol or default_exchange_symbol(symbol)) in markets:
            known.add(symbol)
    return known


def _require_whole_leverage(settings: Settings) -> None:
    """An exchange run's leverage is what the live venue sets on the exchange, a whole
    number from 1 (Binance takes no other): the ledger margins positions, and the risk
    gate approves orders, at the configured one. 2.5 was set as 2x while the books posted
    notional / 2.5 of margin: more room than the exchange gives, and a liquidation price
    too far away."""
    account = settings.account
    for symbol in settings.symbols:
        leverage = account.leverage_for(symbol)
        if leverage < 1 or not float(leverage).is_integer():
            named = symbol in account.leverage
            where = f"account.leverage.{symbol}" if named else "account.default_leverage"
            raise PerpsBotError(
                f"{where} {leverage:g}: the exchange sets whole leverage (1, 2, 3 ...);"
                f" give {short(symbol)} a whole number of at least 1"
            )


def _require_prod_promotion(settings: Settings, strategy: str, fingerprint: str) -> None:
    # prod runs only: the promotion module brings the walk-forward and drift gates
    from perps_bot.metrics.promotion import has_promotion

    with RunStore(settings.database_path) as store:
        promoted = has_promotion(store, fingerprint, "prod")
        others = [] if promoted else store.promoted_fingerprints(strategy, "prod")
    if not promoted:
        name = "prod" if settings.profile == "prod" else f"live profile {settings.profile!r}"
        raise PromotionMissing(
            f"{name} refuses strategy {strategy!r} (fingerprint {fingerprint}): "
            "no promotion to prod recorded (only the canary profile trades without one); run"
            " `perps-bot promote --to prod --run <canary run>`" + _other_promotions(others)
        )


def _other_promotions(fingerprints: list[str]) -> str:
    """Why the strategy's promotions under other fingerprints do not count (those recorded
    before the fingerprint covered the bar size and the plan file's content among them:
    they are not migrated, the evidence run's bars and plan are not known for sure)."""
    if not fingerprints:
        return ""
    shown = ", ".join(fingerprints[-3:])
    return (
        f" (its promotions to prod are for other fingerprints, {shown}: other params, bar"
        " size (strategy.timeframe), plan file content or code; one recorded before the"
        " fingerprint covered the bar size and the plan file does not count either:"
        " promote again)"
    )


def _counts_decimal_places(client: Any, name: str) -> bool:
    """True when ccxt gives the exchange's precisions as decimal places, False for tick
    sizes; InstrumentError for significant digits (bitfinex): a price's tick then
    depends on the price, which an instrument's one tick size cannot describe (a
    precision of 5 was read as a tick of 5)."""
    import ccxt.async_support as ccxt_async

    mode = getattr(client, "precisionMode", None)
    if mode == ccxt_async.SIGNIFICANT_DIGITS:
        raise InstrumentError(
            f"exchange {name!r}: ccxt gives its prices and sizes in significant digits,"
            " which have no fixed tick or step; perps-bot cannot trade on it"
        )
    return bool(mode == ccxt_async.DECIMAL_PLACES)
