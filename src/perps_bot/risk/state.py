"""The risk gate's trading state as data: what must survive a restart (SPEC 9).

A halt protects an account, and the account outlives the process: the state, its
causes, the equity peak and the day's starting equity are exported by the gate,
stored by the run store as JSON after every change and at the end of every run, and
imported by the next run of the same database before it trades.
"""

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from perps_bot.domain import TradingState, short
from perps_bot.domain.pickled import by_fields


@dataclass(frozen=True, slots=True)
class RiskState:
    """One moment of the gate's trading state. Each cause is its human detail or None."""

    state: str  # ACTIVE | REDUCING | HALTED
    detail: str
    manual_halt: str | None = None
    drawdown_halt: str | None = None
    drawdown_reducing: str | None = None
    daily_reducing: str | None = None
    peak: float | None = None
    last_equity: float | None = None
    day: int | None = None  # UTC day (ts // DAY_MS) of day_start_equity
    day_start_equity: float = 0.0

    def __reduce__(self) -> tuple[object, ...]:
        """A checkpoint pickles it (perps_bot.domain.pickled)."""
        return by_fields(self)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RiskState":
        """Tolerant of fields added or removed by other versions, not of wrong ones: a
        stored state is imported before a run trades, so a field of the wrong type, or a
        HALTED state whose cause is gone (a damaged key), raises ValueError rather than
        become a wrong state (a halt forgotten)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name, value in values.items():
            if not _KINDS[name](value):
                raise ValueError(short(f"{name} is {value!r}"))
        state = cls(**values)
        if state.state != state.implied:
            raise ValueError(short(f"state {state.state!r} is not its causes' {state.implied}"))
        return state

    @property
    def implied(self) -> TradingState:
        """The state its causes make, as the gate derives it."""
        return state_of(
            self.manual_halt, self.drawdown_halt, self.drawdown_reducing, self.daily_reducing
        )[0]

    @property
    def halted(self) -> bool:
        return self.manual_halt is not None or self.drawdown_halt is not None


def state_of(
    manual_halt: str | None,
    drawdown_halt: str | None,
    drawdown_reducing: str | None,
    daily_reducing: str | None,
) -> tuple[TradingState, str]:
    """The trading state and its detail that the causes make: the first cause set, a
    halt before a reduction (the gate's state and a stored one's check)."""
    if manual_halt is not None:
        return TradingState.HALTED, manual_halt
    if drawdown_halt is not None:
        return TradingState.HALTED, drawdown_halt
    if drawdown_reducing is not None:
        return TradingState.REDUCING, drawdown_reducing
    if daily_reducing is not None:
        return TradingState.REDUCING, daily_reducing
    return TradingState.ACTIVE, ""


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _cause(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


#: what each stored field may hold
_KINDS: dict[str, Callable[[Any], bool]] = {
    "state": _text,
    "detail": _text,
    "manual_halt": _cause,
    "drawdown_halt": _cause,
    "drawdown_reducing": _cause,
    "daily_reducing": _cause,
    "peak": lambda v: v is None or _number(v),
    "last_equity": lambda v: v is None or _number(v),
    "day": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)),
    "day_start_equity": _number,
}
