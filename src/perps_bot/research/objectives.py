"""What an optimisation maximises (or minimises): report metrics by their public names.

`--objective sharpe` is one objective; `--objective sharpe,max_drawdown` a pair (a
multi-objective study: its result is the Pareto front). A trial whose objective is
undefined (null in the report: no trades, no losing trade for profit_factor, ...) has
no value to rank: it is recorded as failed with that reason and never chosen.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from optuna.study import StudyDirection

from perps_bot.config import ConfigError
from perps_bot.domain import short
from perps_bot.research.trial import finite

#: metric -> direction; max_drawdown only makes sense as the second of a pair (alone or
#: first, the chosen trial would be the one that trades least)
OBJECTIVES: dict[str, StudyDirection] = {
    "sharpe": StudyDirection.MAXIMIZE,
    "sortino": StudyDirection.MAXIMIZE,
    "calmar": StudyDirection.MAXIMIZE,
    "total_pnl": StudyDirection.MAXIMIZE,
    "profit_factor": StudyDirection.MAXIMIZE,
    "return_pct": StudyDirection.MAXIMIZE,
    "max_drawdown": StudyDirection.MINIMIZE,
}


@dataclass(frozen=True, slots=True)
class Objectives:
    names: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> "Objectives":
        names = tuple(n.strip() for n in text.split(",") if n.strip())
        if not 1 <= len(names) <= 2 or len(set(names)) != len(names):
            raise ConfigError(
                f"bad --objective {text!r}: give one metric or a pair, e.g. sharpe or"
                " sharpe,max_drawdown"
            )
        for name in names:
            if name not in OBJECTIVES:
                known = ", ".join(OBJECTIVES)
                raise ConfigError(f"unknown objective {short(name)!r} (known: {known})")
        if names[0] == "max_drawdown":  # the best trial is the first objective's best
            raise ConfigError(
                f"bad --objective {short(text)!r}: a run that never trades has no drawdown,"
                " so give max_drawdown second, e.g. sharpe,max_drawdown"
            )
        return cls(names)

    @property
    def directions(self) -> list[StudyDirection]:
        return [OBJECTIVES[n] for n in self.names]

    @property
    def multi(self) -> bool:
        return len(self.names) > 1

    def values(self, metrics: Mapping[str, Any]) -> tuple[list[float] | None, str | None]:
        """The objective values of a trial's metrics, or (None, why not)."""
        out = []
        for name in self.names:
            value = finite(metrics.get(name))
            if value is None:
                return None, f"{name} is undefined (null in the report) for this run"
            out.append(value)
        return out, None

    def __str__(self) -> str:
        return ",".join(self.names)
