"""The profile's `instruments:` section (SPEC 8): what a profile may say of a contract.
The instrument itself is built from it by perps_bot.instruments, over the built-in data
and, in exchange runs, the exchange's own markets."""

from pydantic import PositiveInt, field_validator

from perps_bot.config.models import FiniteFloat, NonNegFloat, PositiveFloat, Section, Tier


class InstrumentConfig(Section):
    """A profile's description of one contract (SPEC 8). Every key is optional: the
    built-in instrument data (perps_bot/instruments/data) fills what a profile leaves out,
    and exchange runs take tick, step and minimums from the exchange's own markets."""

    exchange_symbol: str | None = None  # ccxt's symbol, e.g. BTC/USDT:USDT
    tick_size: PositiveFloat | None = None
    step_size: PositiveFloat | None = None
    min_quantity: NonNegFloat | None = None
    min_notional: NonNegFloat | None = None
    contract_size: PositiveFloat | None = None
    # the largest order (Binance LOT_SIZE) and market order (MARKET_LOT_SIZE); an explicit
    # null is no limit (the built-in data's does not apply)
    max_quantity: PositiveFloat | None = None
    max_market_quantity: PositiveFloat | None = None
    # Binance's MAX_NUM_ALGO_ORDERS: open stop / take-profit orders per symbol (explicit
    # null: no limit)
    max_algo_orders: PositiveInt | None = None
    # Binance's PERCENT_PRICE: a limit buy above mark * up, a sell below mark * down is
    # refused (exchange runs take it from the market)
    price_multiplier_up: PositiveFloat | None = None
    price_multiplier_down: PositiveFloat | None = None
    tiers: list[Tier] | None = None
    maker_bps: FiniteFloat | None = None  # default: the profile's fees.maker_bps
    taker_bps: NonNegFloat | None = None  # default: fees.taker_bps

    @field_validator("tiers")
    @classmethod
    def _tiers_sorted(cls, value: list[Tier] | None) -> list[Tier] | None:
        if value is not None:
            check_tiers(value)
        return value


def check_tiers(tiers: list[Tier]) -> None:
    """A maintenance tier table starts at notional 0 and its floors strictly increase."""
    if not tiers or tiers[0][0] != 0:
        raise ValueError("tiers must start at notional 0")
    floors = [t[0] for t in tiers]
    if floors != sorted(floors) or len(set(floors)) != len(floors):
        raise ValueError("tiers must have strictly increasing notional floors")
