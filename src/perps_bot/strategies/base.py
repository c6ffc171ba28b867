"""The strategy contract: what the orchestrator calls and what a strategy may return.

Design choices:
- One `on_event` for every market event type. A strategy that only cares about
  candles rejects everything else with one identity test on the class, which is
  cheaper than the orchestrator dispatching per type for strategies that ignore
  most of them (a backtest pushes hundreds of thousands of events through here).
- Parameters are a pydantic model per strategy (`Params`). They are validated
  once, at construction, so the hot path reads plain attributes; a bad value is
  a `StrategyError` with a one-line message naming the parameter, which the CLI
  turns into exit code 2.
- Hooks return a sequence of signals. "Nothing to do" is the shared empty tuple
  `NO_SIGNALS`, so the common case allocates nothing.
- Prices and indicator state are plain Python floats: strategies compare and
  average prices, they do not keep books, so float rounding is harmless here and
  Decimal would cost an order of magnitude in speed.
"""

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import UnionType
from typing import Any, ClassVar, Protocol, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError

from perps_bot.config.llm import LlmConfig
from perps_bot.domain import (
    AccountView,
    Candle,
    Fill,
    MarketEvent,
    OrderUpdate,
    PerpsBotError,
    Signal,
    short,
)
from perps_bot.feeds.bars import BarGrid
from perps_bot.feeds.columns import CandleColumns

#: What every hook returns when it has nothing to say (shared, never mutated).
NO_SIGNALS: tuple[Signal, ...] = ()

#: `run(i, j, plot_at, plot)` of `Strategy.candle_run`: (index after the last candle
#: handed over, its signals)
CandleRun = Callable[[int, int, Sequence[int], Callable[[int], None]], tuple[int, Sequence[Signal]]]

#: The most closed bars an exchange-fed run fetches to warm a strategy up, whatever it
#: asks for (one klines request per symbol; Binance answers at most 1500 rows).
MAX_WARMUP_BARS = 1_000


class StrategyError(PerpsBotError):
    """A strategy that cannot be loaded or configured; the message is one line (CLI exit 2)."""


class NoParams(BaseModel):
    """The parameter model of a strategy that takes no parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Memory(Protocol):
    """Keys a strategy wants kept across restarts of the bot (e.g. the plan rows already
    executed): stored in the run store, per profile and portfolio for runs that trade
    an account, per run otherwise (so a resumed run remembers, a new backtest does not)."""

    def recall(self, namespace: str) -> set[str]: ...

    def remember(self, namespace: str, key: str) -> None: ...


@dataclass
class StrategyContext:
    """What a strategy may use besides the events: its symbols, a read-only view of
    the account, the configured base order size per symbol, a logger, the profile's
    `llm:` section (the llm_planner's defaults, its cache folder decided), and (once the
    run's store is open) its `memory` and the id of the run it trades in (`run_id`: what
    a strategy stores can say which run it came from when the memory outlives the run)."""

    symbols: list[str]
    account: AccountView
    order_size: Callable[[str], float]
    logger: logging.Logger
    memory: Memory | None = None
    llm: LlmConfig | None = None
    run_id: str | None = None


class Strategy(ABC):
    """Base class of every strategy (built in or loaded as `package.module:Class`).

    Subclasses set `name` (a short identifier used in logs, reports and the
    fingerprint) and `Params` (a pydantic model whose fields carry a
    `Field(description=...)`; unknown keys are always rejected), and implement
    `on_event`. Signals are `TargetPosition` (preferred for strategies that hold
    positions: the orchestrator diffs the target against the position) or
    `OrderIntent`.
    """

    name: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = NoParams
    #: True when `on_event` reads nothing but the event and the strategy's own state
    #: (not the account's marks, equity or orders, not the clock): the orchestrator may
    #: then hand it a stretch of candles in which no other stage has anything to do
    #: (`candle_run`), instead of running every stage once per candle.
    candle_stretches: ClassVar[bool] = False
    #: True when `on_event` does nothing with a `Quote` (no signal, no state read or
    #: written): the orchestrator may then walk a stretch of quotes in which no other
    #: stage has anything to do without handing them to the strategy (it still gets
    #: every bar the quotes close, and every other event).
    quote_stretches: ClassVar[bool] = False

    def __init__(self, params: Mapping[str, Any], ctx: StrategyContext) -> None:
        self.ctx = ctx
        self.params: BaseModel = validate_params(type(self), params)

    @classmethod
    def keeps(cls, promise: str) -> bool:
        """Whether the promise `candle_stretches` or `quote_stretches` holds for this
        class: set True by a class whose `on_event` and `candle_run` this class still
        uses. A subclass that overrides either one (to read quotes, say) does not
        inherit the promise unless it makes it again itself."""
        for klass in cls.__mro__:
            if promise in vars(klass):
                return bool(vars(klass)[promise]) and all(
                    getattr(cls, hook) is getattr(klass, hook)
                    for hook in ("on_event", "candle_run")
                )
        return False

    @classmethod
    def fingerprint_inputs(cls, params: BaseModel) -> dict[str, str]:
        """What the strategy trades on beyond its code and params, for the fingerprint
        (name -> a digest): the content of a file its params name, say. None here."""
        return {}

    @classmethod
    def code_inputs(cls, params: BaseModel) -> dict[str, str]:
        """The part of `fingerprint_inputs` that is code, not data (the source of an
        inner strategy the params name): the fingerprint `--resume` compares keeps it
        (an edited plan file is data, edited code is another strategy). None here."""
        return {}

    @classmethod
    def section_inputs(cls, params: BaseModel, llm: LlmConfig) -> dict[str, str]:
        """What the strategy trades on from the profile's `llm:` section, for the
        fingerprint (name -> value or digest): the llm_planner's model and prompt. None here."""
        return {}

    @classmethod
    def check(cls, params: BaseModel, llm: LlmConfig) -> None:
        """What starting with `params` (validated) needs beyond their types, checked
        before anything runs (a file a param names, or the profile's `llm:` section
        does, say); StrategyError naming what is wrong. The session server asks it, so
        such a start is a 400, not a session that fails at once; the strategy's
        constructor refuses the same."""
        return None  # most strategies need nothing more

    @classmethod
    def check_bars(cls, params: BaseModel, bars: BarGrid) -> None:
        """What `params` (validated) need of the bars the run's feed gives the strategy,
        checked before anything runs (the session server asks it too); ConfigError
        naming what is wrong. Any bars here (walkforward: its windows' edges)."""
        return None

    def on_start(self) -> Sequence[Signal]:
        """Called once before the first event."""
        return NO_SIGNALS

    @abstractmethod
    def on_event(self, event: MarketEvent) -> Sequence[Signal]:
        """Called for every market event (Candle, Quote, FundingRate, MarkPrice, BookSnapshot)."""

    def candle_run(self, block: CandleColumns) -> CandleRun:
        """`run(i, j, plot_at, plot)`, for a strategy that declares `candle_stretches`:
        hands it candles i, i + 1, ... of `block` up to j - 1, stopping after the first
        that signals, as `on_event` of each (the Candle built from the columns) would,
        and calls `plot(k)` right after candle k of `plot_at` (ascending, i <= k < j) is
        handed over (the chart reads `plot_values` there); returns the index after the
        last candle handed over and that candle's signals (j and NO_SIGNALS: none of
        them signalled). The orchestrator calls it for stretches of the block in order,
        other candles of it going to `on_event` in between. Override it to skip
        building the Candle objects, and to walk a stretch in one call."""
        on_event = self.on_event
        candle = block.candle

        def run(
            i: int, j: int, plot_at: Sequence[int], plot: Callable[[int], None]
        ) -> tuple[int, Sequence[Signal]]:
            plots = iter(plot_at)
            next_plot = next(plots, j)
            while i < j:
                signals = on_event(candle(i))
                if i == next_plot:
                    plot(i)
                    next_plot = next(plots, j)
                i += 1
                if signals:
                    return i, signals
            return j, NO_SIGNALS

        return run

    def warmup_bars(self) -> int:
        """How many closed bars of `strategy.timeframe` from before the start this strategy
        needs to be ready (its longest indicator window). An exchange-fed run (dry run,
        live, and their replays) fetches that many (at most MAX_WARMUP_BARS) at start and
        hands them to `warm_up`, oldest first, before `on_start`. The default, 0, asks for
        none: a strategy that declares nothing starts cold."""
        return 0

    def warm_up(self, bar: Candle) -> None:
        """One closed bar from before the run (or, on a resumed run, from while it was
        down): learn from it, without trading on it. Nothing it would signal is acted on.
        The default shows it to `on_event` and drops what that returns; a strategy that
        keeps its own idea of its position should override this to update only its
        indicators (the built-ins do)."""
        self.on_event(bar)

    def on_fill(self, fill: Fill) -> Sequence[Signal]:
        """Called for every fill of this run's orders; `fill.is_liquidation` marks a
        forced close by the ledger."""
        return NO_SIGNALS

    def on_order_update(self, update: OrderUpdate) -> Sequence[Signal]:
        """Called for every lifecycle change of this run's orders (accepted, partially
        filled, filled, canceled / rejected / expired with `update.reason`), after the
        fills of the same moment reached the ledger."""
        return NO_SIGNALS

    def on_resume(self) -> Sequence[Signal]:
        """Called when the session API resumes this paused strategy: what it signalled
        while paused was dropped, so it may state again the positions it wants now
        (turned into orders like any signal). The default says nothing."""
        return NO_SIGNALS

    def on_stop(self) -> Sequence[Signal]:
        """Called once at the end of the run (after the last event)."""
        return NO_SIGNALS

    def state(self) -> object:
        """Everything the strategy learned from the events so far (indicator windows,
        the side it targets, stops), for a checkpoint: `restore(state())` on a fresh
        instance with the same params must go on exactly as this one would, which is
        what makes a resumed run end with the same fills (SPEC 9). Any picklable value;
        it is pickled at once, so live objects may be returned. The default, None, is
        right only for a strategy that keeps nothing between events."""
        return None

    def restore(self, state: object) -> None:
        """Take over what `state()` returned (on a resumed run, instead of on_start)."""
        return None

    def plot_series(self) -> tuple[str, ...]:
        """Names of the indicator series the report draws over the price (optional).

        The run samples `plot_values` a few thousand times at most, on its own clock,
        never per event, so a strategy pays nothing on its hot path for being plotted.
        Series are in price units (they share the price axis)."""
        return ()

    def plot_values(self, symbol: str) -> Sequence[float] | None:
        """Current values of the `plot_series` for `symbol`, in the same order; None
        (or NaN entries) while an indicator is still warming up."""
        return None

    @classmethod
    def params_help(cls) -> str:
        """One line per parameter: name, type, default and description (for `--help`)."""
        lines = []
        for field_name, info in cls.Params.model_fields.items():
            kind = info.annotation
            annotation = kind.__name__ if isinstance(kind, type) else str(kind)
            annotation = annotation.replace("typing.", "")
            default = "required" if info.is_required() else f"default {info.default!r}"
            lines.append(f"{field_name} ({annotation}, {default}): {info.description or ''}")
        return "\n".join(lines)


def strategy_label(cls: type[Strategy]) -> str:
    """How error messages name a strategy class."""
    return getattr(cls, "name", None) or f"{cls.__module__}:{cls.__qualname__}"


def validate_params(cls: type[Strategy], params: Mapping[str, Any]) -> BaseModel:
    """Validate `params` against `cls.Params`; raise StrategyError naming the bad param."""
    label = strategy_label(cls)
    fields = cls.Params.model_fields
    unknown = sorted(str(key) for key in params if key not in fields)
    if unknown:
        known = ", ".join(sorted(fields)) or "none"
        raise StrategyError(
            f"strategy {label!r}: unknown param {short(unknown[0])!r} (known: {known})"
        )
    for key, value in params.items():
        if isinstance(value, bool) and _is_number(fields[key].annotation):
            raise StrategyError(f"strategy {label!r}: bad param {short(str(key))!r}: a number,"
                                f" not {str(value).lower()}")  # fmt: skip
    try:
        validated = cls.Params.model_validate(dict(params))
    except ValidationError as exc:
        raise StrategyError(_describe(label, exc)) from exc
    _require_finite(label, validated, params)
    return validated


def _require_finite(label: str, validated: BaseModel, given: Mapping[str, Any]) -> None:
    """pydantic takes 'nan' and 'inf' (params from the environment or --param are text)
    for a float field that does not forbid them: refused like every other non-finite
    number of the config. A default may be infinite; only a given value is checked."""
    for key in given:
        value = getattr(validated, str(key), None)
        if isinstance(value, float) and not math.isfinite(value):
            raise StrategyError(f"strategy {label!r}: bad param {short(str(key))!r}: must be a"
                                f" finite number (got {short(repr(given[key]))})")  # fmt: skip


def _is_number(annotation: object) -> bool:
    """An int or float field (or an optional one). pydantic takes true and false for
    them as 1 and 0, so `--param fast=true` would run a 1-bar average."""
    if get_origin(annotation) in (Union, UnionType):
        kinds = [arg for arg in get_args(annotation) if arg is not type(None)]
        return bool(kinds) and all(_is_number(arg) for arg in kinds)
    return annotation in (int, float)


def _describe(label: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    message = str(first["msg"]).removeprefix("Value error, ").replace("\n", " ")
    if not first["loc"]:
        return f"strategy {label!r}: bad params: {message}"
    param = short(".".join(str(part) for part in first["loc"]))
    got = short(repr(first.get("input")))
    return f"strategy {label!r}: bad param {param!r}: {message} (got {got})"
