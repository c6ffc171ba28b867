"""The simulated market's rules as one value (venues.matching applies them): slippage,
fill probability, latency, fees, the synthetic book's shape, and the fill model of
resting orders (venues.fill_models). Built from the profile by `from_config`."""

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from perps_bot.config.models import MockConfig
from perps_bot.domain import Instrument
from perps_bot.domain.timeutil import parse_duration
from perps_bot.venues.book import SyntheticBook


@dataclass(frozen=True, slots=True)
class MatchingRules:
    """Everything the engine needs to know about the simulated market."""

    slippage_bps: float = 5.0
    fill_probability: float = 0.95
    latency_ms: int = 50
    maker_bps: float = 2.0
    taker_bps: float = 5.0
    book: SyntheticBook = field(default_factory=SyntheticBook)
    #: Quantity at the best synthetic level, per symbol (fallback `default_depth`).
    depth: Mapping[str, float] = field(default_factory=dict)
    default_depth: float = 1.0
    #: Lot size per symbol for partial fills (None: no rounding).
    step_size: Mapping[str, float] = field(default_factory=dict)
    #: (maker_bps, taker_bps) per symbol; others pay maker_bps / taker_bps.
    fees: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    #: Price tick per symbol (penetration and queue models; None: no tick known).
    tick_size: Mapping[str, float] = field(default_factory=dict)
    #: The fill model of resting orders and its parameters (venues.fill_models).
    fill_model: str = "touch"
    penetration_ticks: int = 1
    queue_model: str = "risk_averse"
    #: empirical latency: live times drawn from these (ms); empty: `latency_ms`
    latency_samples: tuple[int, ...] = ()
    candle_path: str = "nearest"

    @property
    def is_default(self) -> bool:
        """Today's rules (touch, constant latency, nearest-first candle path): the plain
        engine, whose fills every existing run and test depends on."""
        return (
            self.fill_model == "touch"
            and not self.latency_samples
            and self.candle_path == "nearest"
        )

    @classmethod
    def from_config(
        cls, mock: MockConfig, instruments: Mapping[str, Instrument]
    ) -> "MatchingRules":
        """Rules of the simulated exchange as the profile and the instruments describe it."""
        return cls(
            slippage_bps=mock.slippage_bps,
            fill_probability=mock.fill_probability,
            latency_ms=parse_duration(mock.latency),
            book=SyntheticBook(
                levels=mock.book_levels,
                spread_bps=mock.spread_bps,
                level_spacing_bps=mock.level_spacing_bps,
                depth_growth=mock.depth_growth,
            ),
            depth={name: mock.book_depth(name) for name in instruments},
            default_depth=mock.default_book_depth,
            step_size={name: i.step_size for name, i in instruments.items()},
            fees={name: (i.maker_bps, i.taker_bps) for name, i in instruments.items()},
            tick_size={name: i.tick_size for name, i in instruments.items()},
            fill_model=mock.fill_model,
            penetration_ticks=mock.penetration_ticks,
            queue_model=mock.queue_model,
            latency_samples=(
                tuple(mock.latency_samples) if mock.latency_model == "empirical" else ()
            ),
            candle_path=mock.candle_path,
        )


def seed_sequence(seed: int, *stream: int) -> np.random.SeedSequence:
    """A SeedSequence from the run seed (any int, negatives folded to 64 bits) and a stream."""
    return np.random.SeedSequence([seed & 0xFFFF_FFFF_FFFF_FFFF, *stream])
