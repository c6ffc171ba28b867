"""What each ledger mutation reports back: plain floats for logs, journal and metrics."""

from perps_bot.domain.record import record


@record
class FillResult:
    """Effect of one fill on its position.

    `realized_pnl` is price PnL of the closed part, before fees; `fee` the fee booked
    (positive = cost); `position_after` the signed size after the fill; `entry_after`
    the average entry after it (0.0 when flat); `closed_size` + `opened_size` equal
    the fill size (a flip both closes and opens).
    """

    realized_pnl: float
    fee: float
    position_after: float
    entry_after: float
    closed_size: float
    opened_size: float


@record
class FundingResult:
    """One funding settlement: `payment` is the signed cash flow to the account."""

    payment: float
    position: float
    mark: float
    rate: float
