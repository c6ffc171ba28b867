"""`walkforward`: one strategy's test windows, each with its own parameters, played as
one run (SPEC 13: the out-of-sample run of a walk-forward analysis).

Params: `strategy` (the inner strategy's name or import path) and `windows`, a JSON
list of `[start_ms, end_ms, {params}]`, in time order, not overlapping. An event
belongs to the window with start < ts <= end (a candle is stamped with its close, so
the window holds exactly the candles that open at or after its start and close by its
end). Between windows, and before the first, the strategy does nothing. Every window
starts and ends on an edge of the bars the strategy sees (`check_bars`, before the run:
the rule `perps-bot walkforward` plans its windows by).

On a window's last candle every position is closed (target flat, reason `walkforward
window end`; it fills at the next open, as the last candle's signals would): each
window's result is that of its own parameters, as in a separate test run.
The next window's strategy starts cold (a fresh instance, as in the optimiser's
trials, which also start cold on their training window), and only once the account is
flat, so it never adopts the position of the window before.
"""

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from perps_bot.config.llm import LlmConfig
from perps_bot.domain import Fill, MarketEvent, OrderUpdate, Signal
from perps_bot.feeds.bars import BarGrid
from perps_bot.strategies.base import (
    NO_SIGNALS,
    Strategy,
    StrategyContext,
    StrategyError,
    validate_params,
)
from perps_bot.strategies.common import target

WINDOW_END = "walkforward window end"
Window = tuple[int, int, dict[str, Any]]


def parse_windows(text: str) -> list[Window]:
    """The `windows` JSON as (start, end, params) tuples; ValueError if malformed."""
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"windows is not JSON: {exc.msg}") from None
    windows: list[Window] = []
    for row in rows if isinstance(rows, list) else [None]:
        if not (isinstance(row, list) and len(row) == 3 and isinstance(row[2], dict)):
            raise ValueError("windows must be a list of [start_ms, end_ms, {params}]")
        start, end = int(row[0]), int(row[1])
        if end <= start or (windows and start < windows[-1][1]):
            raise ValueError("windows must be in time order and must not overlap")
        windows.append((start, end, dict(row[2])))
    if not windows:
        raise ValueError("windows must not be empty")
    return windows


class WalkForwardParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: str = Field(description="the strategy each window runs (name or module:Class)")
    windows: str = Field(description="JSON list of [start_ms, end_ms, {params}] test windows")

    @field_validator("windows")
    @classmethod
    def _windows(cls, value: str) -> str:
        parse_windows(value)
        return value


class WalkForward(Strategy):
    """Plays each test window with the parameters chosen for it."""

    name = "walkforward"
    Params = WalkForwardParams
    params: WalkForwardParams

    def __init__(self, params: Mapping[str, Any], ctx: StrategyContext) -> None:
        super().__init__(params, ctx)
        self._inner_cls = self._inner_class(self.params)
        self._windows = parse_windows(self.params.windows)
        for _, _, window_params in self._windows:  # a bad set fails before the run
            self._inner_cls(window_params, ctx)
        self._k = -1  # index of the window in play (-1: none yet)
        self._inner: Strategy | None = None
        self._started = False  # the inner strategy had its on_start

    @staticmethod
    def _inner_class(params: WalkForwardParams) -> type[Strategy]:
        from perps_bot.strategies.loader import load_strategy  # the loader lists this class

        inner = load_strategy(params.strategy)
        if inner is WalkForward:
            raise StrategyError("walkforward cannot run walkforward windows")
        return inner

    @classmethod
    def fingerprint_inputs(cls, params: BaseModel) -> dict[str, str]:
        """The inner strategy's source and what else each window's params make it trade
        on (a plan file's content): the fingerprint of this class's own modules alone
        kept a promotion over an edited inner strategy or plan."""
        assert isinstance(params, WalkForwardParams)
        inputs = cls.code_inputs(params)
        try:
            inner = cls._inner_class(params)
        except StrategyError:
            return inputs
        for k, (_, _, window_params) in enumerate(parse_windows(params.windows)):
            try:
                validated = validate_params(inner, window_params)
            except StrategyError:
                inputs[f"window {k}"] = "invalid"
                continue
            for name, digest in inner.fingerprint_inputs(validated).items():
                inputs[f"window {k} {name}"] = digest
        return inputs

    @classmethod
    def code_inputs(cls, params: BaseModel) -> dict[str, str]:
        """The inner strategy's source."""
        from perps_bot.strategies.loader import source_hash

        assert isinstance(params, WalkForwardParams)
        try:
            inner = cls._inner_class(params)
        except StrategyError:
            return {"inner": "unloadable"}  # refused when the strategy starts (exit 2)
        return {"inner": source_hash(inner)}

    @classmethod
    def section_inputs(cls, params: BaseModel, llm: LlmConfig) -> dict[str, str]:
        """Each window's inner `section_inputs` (an llm_planner's model and prompt)."""
        assert isinstance(params, WalkForwardParams)
        inputs: dict[str, str] = {}
        try:
            inner = cls._inner_class(params)
            for k, (_, _, window_params) in enumerate(parse_windows(params.windows)):
                validated = validate_params(inner, window_params)
                for name, value in inner.section_inputs(validated, llm).items():
                    inputs[f"window {k} {name}"] = value
        except StrategyError:
            pass  # refused when the strategy starts (fingerprint_inputs says so)
        return inputs

    @classmethod
    def check(cls, params: BaseModel, llm: LlmConfig) -> None:
        """The inner strategy loads and takes each window's params."""
        assert isinstance(params, WalkForwardParams)
        inner = cls._inner_class(params)
        for _, _, window_params in parse_windows(params.windows):
            inner.check(validate_params(inner, window_params), llm)

    @classmethod
    def check_bars(cls, params: BaseModel, bars: BarGrid) -> None:
        """Every window starts and ends on a bar edge, as `perps-bot walkforward` plans
        them: a window ending inside a bar is seen to end when that bar closes, its last
        position held into the time after it."""
        assert isinstance(params, WalkForwardParams)
        for k, (start, end, _) in enumerate(parse_windows(params.windows)):
            bars.on_edge(f"walkforward windows[{k}] start", start)
            bars.on_edge(f"walkforward windows[{k}] end", end)

    def on_event(self, event: MarketEvent) -> Sequence[Signal]:
        ts = event.ts
        windows = self._windows
        if self._inner is not None and ts <= windows[self._k][1]:
            if ts < windows[self._k][1]:
                return self._forward(event)
            # the window's last candle: whatever it signalled now would fill after it
            return self._close_window()
        signals: list[Signal] = []
        if self._inner is not None:  # past the end without a candle at it (a gap)
            signals.extend(self._close_window())
        nxt = self._k + 1
        while nxt < len(windows) and ts > windows[nxt][1]:
            nxt += 1  # windows the data skipped
        if nxt < len(windows) and ts > windows[nxt][0]:
            self._k = nxt
            self._inner = self._inner_cls(windows[nxt][2], self.ctx)
            self._started = False
            signals.extend(self._forward(event))
        return signals

    def _forward(self, event: MarketEvent) -> Sequence[Signal]:
        inner = self._inner
        if inner is None:
            return NO_SIGNALS
        if not self._started:
            if any(self.ctx.account.position_size(s) for s in self.ctx.symbols):
                return NO_SIGNALS  # the last window's positions are still closing
            self._started = True
            started = list(inner.on_start())
            return [*started, *inner.on_event(event)]
        return inner.on_event(event)

    def _close_window(self) -> list[Signal]:
        inner, self._inner = self._inner, None
        if inner is not None and self._started:
            inner.on_stop()
        account = self.ctx.account
        return [target(s, 0, 0.0, WINDOW_END, None) for s in self.ctx.symbols
                if account.position_size(s)]  # fmt: skip

    def state(self) -> object:
        """The window in play, whether its strategy exists and started, and the state of
        a started one: a resumed paper run goes on inside the window with the indicators
        it had (a strategy not started yet is made fresh again)."""
        inner = self._inner
        if inner is None:
            return (self._k, False, False, None)
        started = self._started
        return (self._k, True, started, inner.state() if started else None)

    def restore(self, state: object) -> None:
        if not (isinstance(state, tuple) and len(state) == 4):
            raise TypeError(f"walkforward state must be a tuple of 4, got {state!r}")
        k, has_inner, started, inner_state = state
        self._k, self._started = int(k), bool(started)
        self._inner = self._inner_cls(self._windows[self._k][2], self.ctx) if has_inner else None
        if self._inner is not None and started:
            self._inner.restore(inner_state)

    def on_fill(self, fill: Fill) -> Sequence[Signal]:
        if self._inner is None or not self._started:
            return NO_SIGNALS
        return self._inner.on_fill(fill)

    def on_order_update(self, update: OrderUpdate) -> Sequence[Signal]:
        if self._inner is None or not self._started:
            return NO_SIGNALS
        return self._inner.on_order_update(update)

    def on_resume(self) -> Sequence[Signal]:
        """What the window's strategy wants now (nothing between windows)."""
        if self._inner is None or not self._started:
            return NO_SIGNALS
        return self._inner.on_resume()

    def on_stop(self) -> Sequence[Signal]:
        if self._inner is None or not self._started:
            return NO_SIGNALS
        return self._inner.on_stop()
