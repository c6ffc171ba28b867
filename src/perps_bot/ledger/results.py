"""What each ledger mutation reports back: plain floats for logs, journal and metrics."""

from dataclasses import dataclass
from typing import Final

from perps_bot.domain.pickled import by_fields
from perps_bot.domain.record import record


@dataclass(slots=True, unsafe_hash=True)
class FillResult:
    """Effect of one fill on its position.

    `realized_pnl` is price PnL of the closed part, before fees; `fee` the fee booked
    (positive = cost); `position_after` the signed size after the fill; `entry_after`
    the average entry after it (0.0 when flat); `closed_size` + `opened_size` equal
    the fill size (a flip both closes and opens).
    """

    realized_pnl: Final[float]
    fee: Final[float]
    position_after: Final[float]
    entry_after: Final[float]
    closed_size: Final[float]
    opened_size: Final[float]

    def __init__(
        self,
        realized_pnl: float,
        fee: float,
        position_after: float,
        entry_after: float,
        closed_size: float,
        opened_size: float,
    ) -> None:
        """Written out, not generated (perps_bot.domain.record says why)."""
        self.realized_pnl = realized_pnl
        self.fee = fee
        self.position_after = position_after
        self.entry_after = entry_after
        self.closed_size = closed_size
        self.opened_size = opened_size

    def __reduce__(self) -> tuple[object, ...]:
        """Copied and pickled through `__init__` (perps_bot.domain.pickled)."""
        return by_fields(self)


@record
class FundingResult:
    """One funding settlement: `payment` is the signed cash flow to the account."""

    payment: float
    position: float
    mark: float
    rate: float
