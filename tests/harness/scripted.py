"""A feed that plays a fixed list of market events and a strategy that emits targets at
chosen event numbers: enough to drive the whole orchestrator through a scenario."""

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from perps_bot.domain import (
    Fill,
    MarketEvent,
    OrderIntent,
    OrderUpdate,
    Quote,
    Side,
    Signal,
    TargetPosition,
)
from perps_bot.strategies import NO_SIGNALS, Strategy, StrategyContext


class ScriptedFeed:
    """Plays `events` in one batch per event (so the engine polls and yields between)."""

    simulated = True
    candle_history = False
    mark_extremes = False

    def __init__(self, events: Sequence[MarketEvent]) -> None:
        self.events = list(events)
        self.done = 0
        self.stopped = False

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.stopped = True

    async def batches(self) -> AsyncIterator[Sequence[MarketEvent]]:
        for event in self.events:
            if self.stopped:
                return
            self.done += 1
            yield [event]

    def progress(self) -> tuple[int, int | None]:
        return self.done, len(self.events)

    def strategy_bar_ms(self, timeframe: str) -> int | None:
        return None  # quotes, not candles


def quotes(
    symbol: str,
    prices: Sequence[float],
    *,
    start_ms: int,
    step_ms: int = 1_000,
    spread: float = 1.0,
) -> list[MarketEvent]:
    """One Quote per price, `step_ms` apart, bid/ask `spread` wide, mark = last."""
    return [
        Quote(start_ms + i * step_ms, symbol, p, p - spread / 2, p + spread / 2, p)
        for i, p in enumerate(prices)
    ]


class ScriptParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str = Field("BTC-PERP", description="the symbol the script trades")
    script: str = Field("", description="event_number:target pairs, e.g. '3:1,10:-1,20:0'")


class ScriptedTargets(Strategy):
    """Emits TargetPosition(script[n]) on the n-th event of its symbol (1-based)."""

    name = "scripted_targets"
    Params = ScriptParams
    params: ScriptParams

    def __init__(self, params: Mapping[str, Any], ctx: StrategyContext) -> None:
        super().__init__(params, ctx)
        self.targets: dict[int, float] = {}
        for pair in filter(None, self.params.script.split(",")):
            at, _, target = pair.partition(":")
            self.targets[int(at)] = float(target)
        self.seen = 0
        self.fills: list[Fill] = []

    def on_event(self, event: MarketEvent) -> Sequence[Signal]:
        if event.symbol != self.params.symbol:
            return NO_SIGNALS
        self.seen += 1
        target = self.targets.get(self.seen)
        if target is None:
            return NO_SIGNALS
        return (TargetPosition(event.symbol, target, reason=f"script@{self.seen}"),)

    def on_fill(self, fill: Fill) -> Sequence[Signal]:
        self.fills.append(fill)
        return NO_SIGNALS


class RecordingTargets(ScriptedTargets):
    """ScriptedTargets that logs every hook into `RecordingTargets.log` (a test points it
    at the scripted venue's call list, so one list shows the order of the stages)."""

    name = "recording_targets"
    log: ClassVar[list[str]] = []

    def on_event(self, event: MarketEvent) -> Sequence[Signal]:
        position = self.ctx.account.position_size(self.params.symbol)
        self.log.append(f"strategy.on_event {event.ts} position={position:g}")
        return super().on_event(event)

    def on_fill(self, fill: Fill) -> Sequence[Signal]:
        self.log.append(f"strategy.on_fill {fill.client_id} liquidation={fill.is_liquidation}")
        return super().on_fill(fill)

    def on_order_update(self, update: OrderUpdate) -> Sequence[Signal]:
        self.log.append(f"strategy.on_order_update {update.client_id} {update.status}")
        return NO_SIGNALS


class ScriptedIntents(ScriptedTargets):
    """Emits plain market OrderIntents instead of targets: `script` pairs
    event_number:size (a positive size buys, a negative one sells); several pairs with
    the same event number are emitted together, as one batch of signals."""

    name = "scripted_intents"

    def __init__(self, params: Mapping[str, Any], ctx: StrategyContext) -> None:
        super().__init__(params, ctx)
        self.batches: dict[int, list[float]] = {}
        for pair in filter(None, self.params.script.split(",")):
            at, _, size = pair.partition(":")
            self.batches.setdefault(int(at), []).append(float(size))

    def on_event(self, event: MarketEvent) -> Sequence[Signal]:
        if event.symbol != self.params.symbol:
            return NO_SIGNALS
        self.seen += 1
        return tuple(
            OrderIntent(event.symbol, Side.BUY if s > 0 else Side.SELL, abs(s), reason="script")
            for s in self.batches.get(self.seen, ())
        )
