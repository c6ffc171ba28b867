"""`sma_cross`: the trend-following flip strategy on two simple moving averages.

A cross is a change of the sign of (fast SMA - slow SMA) between two closes,
ignoring bars where the averages are equal (a touch is not a cross). The first
bar with both averages only establishes the regime: the strategy enters on the
first real cross and is then always long or short, flipping on every cross.
A restarted live bot adopts the position it finds (it has no checkpoint; its
averages start empty): when the first regime it sees is against that position,
the averages crossed while it was down, and it flips there, as a bot that had
never stopped would have done (a flat start, or one on the regime's side, waits
for the next cross).
Warmed up (an exchange-fed run fetches the last `slow` closed bars at start), the
averages and the regime are known before the first live bar: that bar enters on a
cross, or flips a position the run starts with against the regime, as above.
It targets a position on a cross only (not on every bar), so an entry the risk
gate denies or shrinks is not retried on every bar; the next cross decides.

With `stop_pct` > 0 each entry carries a stop `stop_pct` away from the entry
close; a close at or through it targets flat (reason "stop") and the strategy
waits for the next cross.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import Field, model_validator

from perps_bot.domain import Candle, MarketEvent, Signal
from perps_bot.feeds.columns import CandleColumns
from perps_bot.strategies.base import NO_SIGNALS, CandleRun, StrategyContext
from perps_bot.strategies.common import (
    MAX_WINDOW,
    PositionStrategy,
    SideState,
    StopParams,
    SymbolStates,
    target,
)
from perps_bot.strategies.indicators import MeanPair

#: the reason's tail of a flip off the position a restarted bot adopted
_AGAINST_START = " (against the position held at start)"
#: `last_sign` of a regime learnt from warm-up bars (+-2): not yet seen by a live bar
_WARMED = 2


class SmaCrossParams(StopParams):
    fast: int = Field(
        10,
        ge=1,
        le=MAX_WINDOW,
        description="bars (candle closes) in the fast simple moving average",
    )
    slow: int = Field(
        30, ge=2, le=MAX_WINDOW, description="bars in the slow simple moving average; > fast"
    )

    @model_validator(mode="after")
    def _fast_below_slow(self) -> "SmaCrossParams":
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be less than slow ({self.slow})")
        return self


class _SymbolState(SideState):
    __slots__ = ("last_sign", "means")

    def __init__(self, fast: int, slow: int) -> None:
        super().__init__()
        self.means = MeanPair(fast, slow)
        # sign of fast - slow at the last bar where they differed (x2: a warm-up bar's)
        self.last_sign = 0


class SmaCross(PositionStrategy[_SymbolState]):
    """Long when the fast SMA crosses above the slow one, short when it crosses below."""

    name = "sma_cross"
    Params = SmaCrossParams
    params: SmaCrossParams
    candle_stretches = True  # reads the close and its own averages only
    quote_stretches = True  # bars only: a quote says nothing to it

    def __init__(self, params: Mapping[str, Any], ctx: StrategyContext) -> None:
        super().__init__(params, ctx)
        p = self.params
        self._stop_pct = p.stop_pct
        self._reason_up = f"sma_cross up {p.fast}/{p.slow}"
        self._reason_down = f"sma_cross down {p.fast}/{p.slow}"
        self._states = SymbolStates(lambda: _SymbolState(p.fast, p.slow), ctx.symbols)

    def on_event(self, event: MarketEvent) -> Sequence[Signal]:
        if not isinstance(event, Candle):
            return NO_SIGNALS
        symbol = event.symbol
        return self._on_close(symbol, self._states[symbol], event.close)

    def candle_run(self, block: CandleColumns) -> CandleRun:
        """Only the closes matter: no Candle is built, and the averages take the closes
        up to the next change of regime (or the close that meets the stop) in one call."""
        symbol = block.symbol
        state = self._states[symbol]
        closes = block.closes()
        means = state.means
        decide = self._decide

        def run(
            i: int, j: int, plot_at: Sequence[int], plot: Callable[[int], None]
        ) -> tuple[int, Sequence[Signal]]:
            sign = state.last_sign
            while i < j:
                # the closes before `k - 1` neither change the regime nor meet the stop;
                # the chart's samples read the averages only (`plot_values`)
                k = means.run(closes, i, _stop_end(closes, i, j, state), sign, plot_at, plot)
                signals = decide(symbol, state, closes[k - 1], means.ready)
                if signals:
                    return k, signals
                i, sign = k, state.last_sign
            return j, NO_SIGNALS

        return run

    def _on_close(self, symbol: str, state: _SymbolState, close: float) -> Sequence[Signal]:
        return self._decide(symbol, state, close, state.means.push(close))

    def _decide(
        self, symbol: str, state: _SymbolState, close: float, ready: bool
    ) -> Sequence[Signal]:
        """The signals of `close`, just added to the averages (`ready`: both known)."""
        if ready:
            means = state.means
            fast, slow = means.fast_mean, means.slow_mean
            sign = 1 if fast > slow else -1 if fast < slow else 0
            if sign != state.last_sign and sign != 0:  # the common case: one test
                previous = state.last_sign
                state.last_sign = sign
                if previous == -sign or previous == -_WARMED * sign:  # a cross
                    return (self._enter(symbol, state, sign, close),)
                if state.side == -sign:  # a restart adopted the side the averages left
                    return (self._enter(symbol, state, sign, close, _AGAINST_START),)
        if state.stop is not None and state.stop_hit(close):
            state.flat()
            return (target(symbol, 0, 0.0, "stop", None),)
        return NO_SIGNALS

    def warmup_bars(self) -> int:
        """The slow window: its first full bar sets the regime the first live bar crosses."""
        return int(self.params.slow)

    def warm_up(self, bar: Candle) -> None:
        """The averages and the regime only (no side taken). The regime is kept as
        +-_WARMED: the first live bar of the same regime is then checked against the
        position the run starts with, as the first regime of a cold start is."""
        state = self._states[bar.symbol]
        means = state.means
        if means.push(bar.close):
            fast, slow = means.fast_mean, means.slow_mean
            if fast != slow:
                state.last_sign = _WARMED if fast > slow else -_WARMED

    def _enter(
        self, symbol: str, state: _SymbolState, sign: int, close: float, why: str = ""
    ) -> Signal:
        state.go(sign, close, self._stop_pct)
        reason = (self._reason_up if sign > 0 else self._reason_down) + why
        return target(symbol, sign, self.ctx.order_size(symbol), reason, state.stop)

    def plot_series(self) -> tuple[str, ...]:
        p = self.params
        return (f"SMA {p.fast}", f"SMA {p.slow}")

    def plot_values(self, symbol: str) -> Sequence[float] | None:
        means = self._states[symbol].means
        return (means.fast_mean, means.slow_mean)  # NaN until `slow` bars were seen


def _stop_end(closes: list[float], i: int, j: int, state: SideState) -> int:
    """The index after the first of closes i..j-1 at or through the stop (j: none)."""
    stop, side = state.stop, state.side
    if stop is None or side == 0:
        return j
    window = closes[i:j]
    # min and max settle the common case in C (a NaN first makes the test fail: the
    # loop then decides, and a NaN never meets a stop)
    if (min(window) > stop) if side > 0 else (max(window) < stop):
        return j
    for k, close in enumerate(window, start=i + 1):
        if (close <= stop) if side > 0 else (close >= stop):
            return k
    return j
