"""`mean_reversion`: fade price extremes, get out when price is back at its mean.

Two ways to call an extreme (param `mode`):
- `zscore`: z = (close - mean) / std over the last `lookback` closes, the
  current close included, population std. Long at z <= -entry_z, short at
  z >= entry_z; a long exits once z >= -exit_z, a short once z <= exit_z
  (exit_z = 0: exit at the mean). With population std one outlier in n bars
  reaches at most |z| = sqrt(n - 1), so entry_z must be below that.
- `rsi`: Wilder's RSI over `rsi_period` changes. Long at RSI <= rsi_low, short
  at RSI >= rsi_high; a long exits once RSI >= 50, a short once RSI <= 50.

A position at the opposite extreme flips directly. With `stop_pct` > 0 each
entry carries a stop `stop_pct` from the entry close; after a stop-out the
strategy does not re-enter until the indicator has been back inside the entry
band (otherwise it would re-enter on the very next bar of the same move).
A window with zero variance has no z-score and emits nothing.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import Field, model_validator

from perps_bot.domain import Candle, Fill, MarketEvent, Signal
from perps_bot.strategies.base import NO_SIGNALS, StrategyContext
from perps_bot.strategies.common import (
    MAX_WINDOW,
    PositionStrategy,
    SideState,
    StopParams,
    SymbolStates,
    target,
)
from perps_bot.strategies.indicators import RollingStats, WilderRsi

# A window whose std is below this fraction of its mean counts as flat (no z-score).
_FLAT_STD = 1e-12
#: rsi warm-up: its first value's rsi_period + 1 bars and 10 x rsi_period more
_RSI_SETTLE = 11


class MeanReversionParams(StopParams):
    mode: Literal["zscore", "rsi"] = Field(
        "zscore", description="how an extreme is measured: 'zscore' of the close or 'rsi'"
    )
    lookback: int = Field(
        20, ge=2, le=MAX_WINDOW, description="zscore: bars in the rolling mean and std"
    )
    entry_z: float = Field(2.0, gt=0.0, description="zscore: enter at |z| >= entry_z")
    exit_z: float = Field(
        0.0, ge=0.0, description="zscore: exit once |z| <= exit_z on the way back (0 = at the mean)"
    )
    rsi_period: int = Field(14, ge=2, description="rsi: price changes in Wilder's RSI")
    rsi_low: float = Field(30.0, gt=0.0, lt=50.0, description="rsi: go long at RSI <= rsi_low")
    rsi_high: float = Field(70.0, gt=50.0, lt=100.0, description="rsi: go short at RSI >= rsi_high")

    @model_validator(mode="after")
    def _consistent(self) -> "MeanReversionParams":
        if self.exit_z >= self.entry_z:
            raise ValueError(f"exit_z ({self.exit_z}) must be less than entry_z ({self.entry_z})")
        reachable = math.sqrt(self.lookback - 1)
        if self.mode == "zscore" and self.entry_z >= reachable:
            raise ValueError(
                f"entry_z ({self.entry_z}) is never reached with lookback {self.lookback} "
                f"(max |z| is {reachable:.3f}); lower entry_z or raise lookback"
            )
        return self


class _SymbolState(SideState):
    __slots__ = ("armed", "rsi", "stats")

    def __init__(self, p: MeanReversionParams) -> None:
        super().__init__()
        self.stats = RollingStats(p.lookback)
        self.rsi = WilderRsi(p.rsi_period)
        self.armed = True  # False after a stop-out until the indicator is back inside the band


class MeanReversion(PositionStrategy[_SymbolState]):
    """Long at a low extreme, short at a high one, flat once back at the mean."""

    name = "mean_reversion"
    Params = MeanReversionParams
    params: MeanReversionParams
    candle_stretches = True  # reads the close and its own indicators only
    quote_stretches = True  # bars only: a quote says nothing to it

    def __init__(self, params: Mapping[str, Any], ctx: StrategyContext) -> None:
        super().__init__(params, ctx)
        p = self.params
        self._zscore = p.mode == "zscore"
        self._stop_pct = p.stop_pct
        self._states = SymbolStates(lambda: _SymbolState(p), ctx.symbols)

    def on_event(self, event: MarketEvent) -> Sequence[Signal]:
        if not isinstance(event, Candle):
            return NO_SIGNALS
        symbol = event.symbol
        state = self._states[symbol]
        close = event.close
        if state.stop is not None and state.stop_hit(close):
            self._feed(state, close)
            state.flat()
            state.armed = False
            return (target(symbol, 0, 0.0, "stop", None),)
        if self._zscore:
            return self._on_zscore(symbol, state, close)
        return self._on_rsi(symbol, state, close)

    def warmup_bars(self) -> int:
        """zscore: the lookback window. rsi: Wilder's smoothing weighs all it has seen, so
        the `rsi_period` + 1 bars of its first value read the seed (up to 24 points off
        a run through the same history); 10 x rsi_period more leave the seed a weight
        of ((rsi_period - 1) / rsi_period)^(10 x rsi_period), under 1e-4."""
        p = self.params
        return int(p.lookback) if self._zscore else _RSI_SETTLE * int(p.rsi_period) + 1

    def warm_up(self, bar: Candle) -> None:
        """The indicator only: no side taken, no stop, the entry stays armed."""
        self._feed(self._states[bar.symbol], bar.close)

    def _feed(self, state: _SymbolState, close: float) -> None:
        """Keep the indicator current on a bar that is decided before it is read."""
        if self._zscore:
            state.stats.push(close)
        else:
            state.rsi.push(close)

    def _on_zscore(self, symbol: str, state: _SymbolState, close: float) -> Sequence[Signal]:
        stats = state.stats
        if not stats.push(close) or stats.std <= abs(stats.mean) * _FLAT_STD:
            return NO_SIGNALS
        z = (close - stats.mean) / stats.std
        p = self.params
        return self._decide(
            symbol,
            state,
            close,
            low=z <= -p.entry_z,
            high=z >= p.entry_z,
            long_done=z >= -p.exit_z,
            short_done=z <= p.exit_z,
            reading=("z", z, 2),
        )

    def _on_rsi(self, symbol: str, state: _SymbolState, close: float) -> Sequence[Signal]:
        rsi = state.rsi.push(close)
        if rsi is None:
            return NO_SIGNALS
        p = self.params
        return self._decide(
            symbol,
            state,
            close,
            low=rsi <= p.rsi_low,
            high=rsi >= p.rsi_high,
            long_done=rsi >= 50.0,
            short_done=rsi <= 50.0,
            reading=("rsi", rsi, 1),
        )

    def _decide(
        self,
        symbol: str,
        state: _SymbolState,
        close: float,
        *,
        low: bool,
        high: bool,
        long_done: bool,
        short_done: bool,
        reading: tuple[str, float, int],
    ) -> Sequence[Signal]:
        """The one state machine of both modes: an extreme against the position flips it,
        reaching the mean exits, and after a stop-out entries wait until the indicator is
        back inside the band (re-armed). `reading` (name, value, decimals) becomes the
        signal's reason only when there is a signal: this runs on every bar."""
        side = state.side
        if side > 0:
            if high:
                return self._enter(symbol, state, -1, close, _reason(reading))
            if long_done:
                return self._exit(symbol, state, _reason(reading))
        elif side < 0:
            if low:
                return self._enter(symbol, state, 1, close, _reason(reading))
            if short_done:
                return self._exit(symbol, state, _reason(reading))
        elif state.armed:
            if low:
                return self._enter(symbol, state, 1, close, _reason(reading))
            if high:
                return self._enter(symbol, state, -1, close, _reason(reading))
        elif not (low or high):
            state.armed = True
        return NO_SIGNALS

    def _enter(
        self, symbol: str, state: _SymbolState, side: int, close: float, why: str
    ) -> Sequence[Signal]:
        state.go(side, close, self._stop_pct)
        reason = f"mean_reversion {'long' if side > 0 else 'short'} {why}"
        return (target(symbol, side, self.ctx.order_size(symbol), reason, state.stop),)

    def _exit(self, symbol: str, state: _SymbolState, why: str) -> Sequence[Signal]:
        state.flat()
        return (target(symbol, 0, 0.0, f"mean_reversion exit {why}", None),)

    def on_fill(self, fill: Fill) -> Sequence[Signal]:
        state = self._states.liquidated(fill)
        if state is not None:
            state.armed = False
        return NO_SIGNALS

    def plot_series(self) -> tuple[str, ...]:
        """zscore mode: the rolling mean and the entry bands mean +- entry_z * std (where
        a close triggers an entry). rsi mode has no price-scale series to draw."""
        if not self._zscore:
            return ()
        z = self.params.entry_z
        return ("mean", f"mean + {z:g} std", f"mean - {z:g} std")

    def plot_values(self, symbol: str) -> Sequence[float] | None:
        if not self._zscore:
            return None
        stats = self._states[symbol].stats
        if not stats.full:
            return None
        band = self.params.entry_z * stats.std
        return (stats.mean, stats.mean + band, stats.mean - band)


def _reason(reading: tuple[str, float, int]) -> str:
    name, value, decimals = reading
    return f"{name}={value:.{decimals}f}"
