"""Per-symbol position bookkeeping shared by the built-in strategies.

A built-in strategy remembers the direction it last targeted (+1 long, -1
short, 0 flat) and its protective stop, instead of asking the account on every
bar: the account lags the signal by the execution stage, and a dict lookup plus
two slot reads is all the hot path can afford. `sync_from_account` reconciles
once at start (a restarted bot adopts the position it finds), and a
liquidation fill resets the symbol to flat.
"""

from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from perps_bot.domain import AccountView, Fill, Signal, TargetPosition
from perps_bot.strategies.base import NO_SIGNALS, Strategy

#: The longest indicator window (bars) a built-in takes: each one holds its window in a
#: list per symbol, so `slow=1000000000` would allocate 8 GB per symbol (a MemoryError,
#: or the machine's memory gone) instead of being refused as a bad param.
MAX_WINDOW = 1_000_000


class StopParams(BaseModel):
    """The protective-stop parameter every built-in position strategy accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stop_pct: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="stop distance as a fraction of the entry close (0.02 = 2%); 0 = no stop",
    )


class SideState:
    """The direction a strategy targets on one symbol, and its stop (None: no stop)."""

    __slots__ = ("side", "stop")

    def __init__(self) -> None:
        self.side = 0
        self.stop: float | None = None

    def go(self, side: int, price: float, stop_pct: float) -> None:
        """Record a new target direction entered at `price`, with its stop."""
        self.side = side
        self.stop = stop_price(side, price, stop_pct)

    def flat(self) -> None:
        self.side = 0
        self.stop = None

    def stop_hit(self, close: float) -> bool:
        """True when `close` is at or through the stop of the current position."""
        stop = self.stop
        if stop is None or self.side == 0:
            return False
        return close <= stop if self.side > 0 else close >= stop

    def sync_from_account(self, account: AccountView, symbol: str, stop_pct: float) -> None:
        size = account.position_size(symbol)
        if size == 0.0:
            self.flat()
            return
        side = 1 if size > 0 else -1
        entry = account.entry_price(symbol)
        self.side = side
        self.stop = stop_price(side, entry, stop_pct) if entry > 0 else None


def stop_price(side: int, price: float, stop_pct: float) -> float | None:
    """The stop `stop_pct` away from `price` against a position of direction `side`."""
    if stop_pct <= 0.0 or side == 0:
        return None
    return price * (1.0 - stop_pct) if side > 0 else price * (1.0 + stop_pct)


def target(symbol: str, side: int, size: float, reason: str, stop: float | None) -> TargetPosition:
    return TargetPosition(
        symbol=symbol, size=side * size if side else 0.0, reason=reason, stop_price=stop
    )


S = TypeVar("S", bound=SideState)


class SymbolStates(dict[str, S]):
    """A strategy's per-symbol state: made on first sight of a symbol, adopted from the
    account at start, reset to flat by a liquidation. A dict, so that `states[symbol]`
    (once per event) is a C lookup; a symbol not seen yet is made by `__missing__`."""

    __slots__ = ("_factory",)

    def __init__(self, factory: Callable[[], S], symbols: Iterable[str]) -> None:
        super().__init__((symbol, factory()) for symbol in symbols)
        self._factory = factory

    def __missing__(self, symbol: str) -> S:
        state = self[symbol] = self._factory()
        return state

    def sync(self, account: AccountView, stop_pct: float) -> None:
        """Adopt the positions a restarted bot finds in the account."""
        for symbol, state in self.items():
            state.sync_from_account(account, symbol, stop_pct)

    def snapshot(self) -> dict[str, S]:
        """The per-symbol states, for Strategy.state() (pickled by the caller at once)."""
        return dict(self)

    def adopt(self, states: object) -> None:
        """Take over what `snapshot()` returned (Strategy.restore)."""
        if not isinstance(states, dict):
            raise TypeError(f"strategy state must be a dict of symbol states, got {states!r}")
        self.clear()
        self.update(states)

    def liquidated(self, fill: Fill) -> S | None:
        """Reset the symbol to flat after a liquidation fill; return its state if reset."""
        if not fill.is_liquidation:
            return None
        state = dict.get(self, fill.symbol)
        if state is not None:
            state.flat()
        return state


class PositionStrategy(Strategy, Generic[S]):
    """A built-in strategy that keeps its per-symbol sides in `_states`: it adopts the
    account's positions at start (stops `_stop_pct` from their entries), checkpoints
    and restores the states, and takes a symbol flat on a liquidation fill."""

    _states: SymbolStates[S]
    _stop_pct: float = 0.0

    def on_start(self) -> Sequence[Signal]:
        self._states.sync(self.ctx.account, self._stop_pct)
        return NO_SIGNALS

    def state(self) -> object:
        return self._states.snapshot()

    def restore(self, state: object) -> None:
        self._states.adopt(state)

    def on_fill(self, fill: Fill) -> Sequence[Signal]:
        self._states.liquidated(fill)
        return NO_SIGNALS

    def on_resume(self) -> Sequence[Signal]:
        """Target again each side the account does not hold: a cross, an exit or a stop
        decided while paused was dropped, and the next signal may be a whole cycle away.
        A symbol held on the wanted side is left as it is (not topped up to the order
        size a risk gate may have shrunk)."""
        account = self.ctx.account
        out: list[Signal] = []
        for symbol, state in self._states.items():
            held = account.position_size(symbol)
            if state.side != ((held > 0) - (held < 0)):
                size = self.ctx.order_size(symbol) if state.side else 0.0
                side = ("flat", "long", "short")[state.side]
                why = f"{self.name} resume: wants {side}"
                out.append(target(symbol, state.side, size, why, state.stop))
        return out
