"""Everything a run checks before it writes anything (a run that fails here leaves no
trace in the store): the strategy loads and takes its parameters, prod has a
promotion for this exact strategy, and every symbol has an instrument (from the
exchange's markets for exchange modes, reached within `exchange.startup_timeout`,
else from the profile).

A failure is a PerpsBotError: one line, exit code 2.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from perps_bot import __version__
from perps_bot.config import PortfolioPlan, Settings
from perps_bot.domain import PerpsBotError, RunMode
from perps_bot.exchange.runtime import close_quietly
from perps_bot.instruments import (
    InstrumentCatalog,
    InstrumentError,
    catalog_from_markets,
    catalog_from_profile,
)
from perps_bot.orchestrator.modes import MODES, ModeSpec
from perps_bot.storage import RunStore
from perps_bot.strategies import Strategy, load_strategy, strategy_fingerprint

log = logging.getLogger("perps_bot.run")


#: the one profile that trades real orders without a promotion to prod (tiny, capped)
CANARY = "canary"


class PromotionMissing(PerpsBotError):
    """prod refuses a strategy fingerprint that was never promoted to prod."""


@dataclass(frozen=True, slots=True)
class PlannedPortfolio:
    """A portfolio of the run with its strategy class and fingerprint (SPEC 10)."""

    plan: PortfolioPlan
    strategy_cls: type[Strategy]
    fingerprint: str


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
    portfolios = []
    for plan in settings.portfolio_plans():
        cls = load_strategy(plan.strategy)
        fingerprint = strategy_fingerprint(cls, plan.params, __version__)
        portfolios.append(PlannedPortfolio(plan, cls, fingerprint))
    if spec.real_orders and settings.profile != CANARY:  # any other name trades as prod
        for planned in portfolios:
            _require_prod_promotion(settings, planned.plan.strategy, planned.fingerprint)
    symbols = settings.symbols
    catalog = profile_catalog(settings)
    if catalog is not None:
        return Preflight(spec, portfolios, __version__, catalog, None)
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
    except BaseException:
        await close_quietly(client)
        raise
    return Preflight(spec, portfolios, __version__, catalog, client)


def profile_catalog(settings: Settings) -> InstrumentCatalog | None:
    """The instruments of a run whose mode takes them from the profile (checked with no
    network: the session server refuses a paper session's unknown symbol with a 400
    before it starts), None when they come from the exchange's markets; UnknownInstrument
    naming the first symbol with none."""
    if MODES[settings.mode].exchange_instruments:
        return None
    return catalog_from_profile(settings.instruments, settings.fees).require(settings.symbols)


def _require_prod_promotion(settings: Settings, strategy: str, fingerprint: str) -> None:
    # prod runs only: the promotion module brings the walk-forward and drift gates
    from perps_bot.metrics.promotion import has_promotion

    with RunStore(settings.database_path) as store:
        promoted = has_promotion(store, fingerprint, "prod")
    if not promoted:
        name = "prod" if settings.profile == "prod" else f"live profile {settings.profile!r}"
        raise PromotionMissing(
            f"{name} refuses strategy {strategy!r} (fingerprint {fingerprint}): "
            "no promotion to prod recorded (only the canary profile trades without one); run"
            " `perps-bot promote --to prod --run <canary run>`"
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
