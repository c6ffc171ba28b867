"""The emulated exchange's own instrument rules: tick, step, size limits, minimum
notional, maintenance tiers and liquidation clearance fee per symbol.

Why the emulator has its own copy instead of reading the bot's config: it plays the
exchange. The bot's tier tables are the bot's belief about the exchange; if the
emulator read them, a wrong belief could never show up as a test failure. These
values follow what Binance USDM publishes (exchangeInfo filters, leverageBracket) for
BTCUSDT and ETHUSDT; SOLUSDT and every other symbol use a generic, more conservative
table.

A tier is ``(notional_floor, maintenance_margin_rate, maintenance_amount)``, floors
ascending from 0. The amount (Binance's ``cum``) makes the maintenance margin
``notional * rate - amount`` continuous across floors; ``tests`` check that, because
the emulator's liquidation price relies on it.
"""

from dataclasses import dataclass

Tier = tuple[float, float, float]

BTC_TIERS: tuple[Tier, ...] = (
    (0.0, 0.004, 0.0),
    (50_000.0, 0.005, 50.0),
    (600_000.0, 0.01, 3_050.0),
    (3_000_000.0, 0.025, 48_050.0),
    (12_000_000.0, 0.05, 348_050.0),
    (20_000_000.0, 0.1, 1_348_050.0),
    (30_000_000.0, 0.125, 2_098_050.0),
    (50_000_000.0, 0.15, 3_348_050.0),
    (80_000_000.0, 0.25, 11_348_050.0),
)
ETH_TIERS: tuple[Tier, ...] = (
    (0.0, 0.005, 0.0),
    (50_000.0, 0.0065, 75.0),
    (600_000.0, 0.01, 2_175.0),
    (3_000_000.0, 0.02, 32_175.0),
    (12_000_000.0, 0.05, 392_175.0),
    (20_000_000.0, 0.1, 1_392_175.0),
    (30_000_000.0, 0.125, 2_142_175.0),
    (50_000_000.0, 0.15, 3_392_175.0),
    (80_000_000.0, 0.25, 11_392_175.0),
)
GENERIC_TIERS: tuple[Tier, ...] = (
    (0.0, 0.01, 0.0),
    (5_000.0, 0.025, 75.0),
    (25_000.0, 0.05, 700.0),
    (100_000.0, 0.1, 5_700.0),
    (250_000.0, 0.125, 11_950.0),
    (1_000_000.0, 0.5, 386_950.0),
)
GENERIC_LIQUIDATION_FEE = 0.015


@dataclass(frozen=True, slots=True)
class Instrument:
    """Published rules of one listed symbol; decimals are strings so they stay exact."""

    tick: str
    step: str
    min_qty: str
    max_qty: str
    market_max_qty: str
    min_notional: str
    tiers: tuple[Tier, ...]
    liquidation_fee: float  # clearance fee rate on the liquidated notional


INSTRUMENTS: dict[str, Instrument] = {
    "BTCUSDT": Instrument("0.10", "0.001", "0.001", "1000", "120", "100", BTC_TIERS, 0.0125),
    "ETHUSDT": Instrument("0.01", "0.001", "0.001", "10000", "2000", "20", ETH_TIERS, 0.0125),
    "SOLUSDT": Instrument(
        "0.01", "1", "1", "1000000", "5000", "5", GENERIC_TIERS, GENERIC_LIQUIDATION_FEE
    ),
}
