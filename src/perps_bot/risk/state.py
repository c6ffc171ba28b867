"""The risk gate's trading state as data: what must survive a restart (SPEC 9).

A halt protects an account, and the account outlives the process: the state, its
causes, the equity peak and the day's starting equity are exported by the gate,
stored by the run store as JSON after every change and at the end of every run, and
imported by the next run of the same database before it trades.
"""

from dataclasses import asdict, dataclass, fields
from typing import Any


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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RiskState":
        """Tolerant of fields added or removed by other versions."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def halted(self) -> bool:
        return self.manual_halt is not None or self.drawdown_halt is not None
