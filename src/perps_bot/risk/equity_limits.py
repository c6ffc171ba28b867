"""The trading state and the equity limits that move it: ACTIVE, REDUCING or HALTED.

Equity comes from `on_equity` (the ledger's equity: realized and unrealized
PnL, fees and funding). The day's starting equity is the first equity seen in
each UTC day; a fall of more than `daily_loss_limit` of it sets REDUCING until
the next UTC day. Drawdown is measured from the peak of all equities seen: at
`max_drawdown` trading HALTS (sticky until resume()); at `reducing_drawdown`
the state is REDUCING for as long as the drawdown stays there.

A halt (an operator's or the drawdown's) outlives the process: the whole
state is exported for the run store (`risk.state.RiskState`) so that it survives a
restart. `on_equity` runs for every equity snapshot (every simulated minute of a
backtest), so it skips the equities that provably change nothing (`_quiet_band`).
Kept apart from the order checks of `risk.gate`, which only read the state.
"""

from decimal import Decimal

from perps_bot.config import RiskConfig
from perps_bot.domain import DAY_MS, TradingState
from perps_bot.risk.state import RiskState, state_of

#: relative tolerance of the limit comparisons: an equity or an order resized exactly
#: to a threshold must not fail it by a rounding error
REL_TOL = 1e-9


class EquityLimits:
    """Tracks equity against the drawdown and daily-loss limits and holds the trading
    state they (and halts) set."""

    def __init__(self, cfg: RiskConfig) -> None:
        self.cfg = cfg
        # causes of the trading state; each is a human detail string or None
        self._manual_halt: str | None = None
        self._drawdown_halt: str | None = None
        self._drawdown_reducing: str | None = None
        self._daily_reducing: str | None = None
        self._last_flags: tuple[str | None, str | None, str | None] = (None, None, None)
        self._peak: float | None = None
        self._last_equity: float | None = None
        self._day: int | None = None
        self._day_start_equity = 0.0
        # Equities in (quiet_low, quiet_high] before quiet_until change nothing (see
        # _quiet_band); on_equity runs every simulated minute and skips them.
        self._quiet_low = self._quiet_high = 0.0
        self._quiet_until = -1
        self.state = TradingState.ACTIVE
        self.state_detail = ""

    def halt(self, reason: str) -> None:
        """Stop all trading until resume()."""
        self._manual_halt = reason or "halted"
        self._refresh_state()

    def resume(self) -> None:
        """Lift a halt (manual or drawdown) and the drawdown REDUCING state; the peak restarts
        at the last equity seen, so the accepted loss does not re-trigger at once. A daily
        loss REDUCING state stays until the next UTC day."""
        self._manual_halt = None
        self._drawdown_halt = None
        self._drawdown_reducing = None
        if self._last_equity is not None:
            self._peak = self._last_equity
        self._last_flags = (None, None, self._daily_reducing)
        self._quiet_until = -1
        self._refresh_state()

    def export_state(self) -> RiskState:
        """The trading state to store (SPEC 9): a restart imports it before trading."""
        return RiskState(
            str(self.state), self.state_detail, self._manual_halt, self._drawdown_halt,
            self._drawdown_reducing, self._daily_reducing, self._peak, self._last_equity,
            self._day, self._day_start_equity,
        )  # fmt: skip

    def import_state(self, saved: RiskState, *, same_account: bool) -> None:
        """Take over a stored trading state. A halt always carries over (only an operator
        lifts it: resume()). The peak, the day's start and the REDUCING causes measure
        an account, so they carry over only when this run trades the same one (a live
        account after the ledger adopted its balance, a resumed paper run); a fresh paper
        account starts its own."""
        self._manual_halt, self._drawdown_halt = saved.manual_halt, saved.drawdown_halt
        if same_account:
            self._drawdown_reducing, self._daily_reducing = (
                saved.drawdown_reducing, saved.daily_reducing,
            )  # fmt: skip
            self._peak, self._last_equity = saved.peak, saved.last_equity
            self._day, self._day_start_equity = saved.day, saved.day_start_equity
        self._last_flags = (self._drawdown_halt, self._drawdown_reducing, self._daily_reducing)
        self._quiet_until = -1
        self._refresh_state()

    def quiet_band(self) -> tuple[float, float, int] | None:
        """(low, high, until): equities in (low, high] before `until` that `on_equity`
        would only record (see _quiet_band); None when there is no such band. The
        orchestrator hands over such snapshots without the call (`quiet_equity`)."""
        if self._quiet_until < 0:
            return None
        return self._quiet_low, self._quiet_high, self._quiet_until

    def quiet_equity(self, equity: float) -> None:
        """The last of the snapshots `quiet_equities` cleared."""
        self._last_equity = equity

    def on_equity(self, ts: int, equity: float) -> TradingState | None:
        """Update the daily-loss and drawdown states; return the new state if it changed."""
        self._last_equity = equity
        if ts < self._quiet_until and self._quiet_low < equity <= self._quiet_high:
            return None
        cfg = self.cfg
        day = ts // DAY_MS
        if day != self._day:
            self._day = day
            self._day_start_equity = equity
            self._daily_reducing = None
        start = self._day_start_equity
        if (
            self._daily_reducing is None
            and start > 0
            and fell_by(start, equity, cfg.daily_loss_limit, strictly=True)
        ):
            self._daily_reducing = (
                f"daily loss {(start - equity) / start:.2%} of the day's starting equity "
                f"{start:.2f} > daily_loss_limit {cfg.daily_loss_limit:.2%}"
            )
        if self._peak is None or equity > self._peak:
            self._peak = equity
        peak = self._peak
        drawdown = (peak - equity) / peak if peak > 0 else 0.0
        if self._drawdown_halt is None and peak > 0 and fell_by(peak, equity, cfg.max_drawdown):
            self._drawdown_halt = (
                f"drawdown {drawdown:.2%} from peak {peak:.2f} >= max_drawdown "
                f"{cfg.max_drawdown:.2%}"
            )
        if peak > 0 and fell_by(peak, equity, cfg.reducing_drawdown):
            self._drawdown_reducing = (
                f"drawdown {drawdown:.2%} from peak {peak:.2f} >= reducing_drawdown "
                f"{cfg.reducing_drawdown:.2%}"
            )
        else:
            self._drawdown_reducing = None
        flags = (self._drawdown_halt, self._drawdown_reducing, self._daily_reducing)
        self._quiet_band(day)
        if flags == self._last_flags:
            return None
        self._last_flags = flags
        before = self.state
        self._refresh_state()
        return self.state if self.state is not before else None

    def _quiet_band(self, day: int) -> None:
        """The equities that cannot change any flag for the rest of this UTC day: not
        above the peak (a new peak moves the drawdown base) and above every threshold
        whose flag is not set yet. Both the daily-loss and the drawdown tests are
        monotone in equity, so the band is an interval; its floor is raised by a
        relative 1e-9 so that an equity within rounding of a threshold takes the exact
        test. No band while the drawdown REDUCING flag is set (it clears on recovery)."""
        cfg = self.cfg
        peak = self._peak if self._peak is not None else 0.0
        start = self._day_start_equity
        if self._drawdown_reducing is not None or peak <= 0 or start <= 0:
            self._quiet_until = -1
            return
        floors = [peak - cfg.reducing_drawdown * peak]
        if self._drawdown_halt is None:
            floors.append(peak - cfg.max_drawdown * peak)
        if self._daily_reducing is None:
            floors.append(start - cfg.daily_loss_limit * start)
        floor = max(floors)
        self._quiet_low = floor + abs(floor) * REL_TOL
        self._quiet_high = peak
        self._quiet_until = (day + 1) * DAY_MS

    def _refresh_state(self) -> None:
        self.state, self.state_detail = state_of(
            self._manual_halt, self._drawdown_halt, self._drawdown_reducing, self._daily_reducing
        )


def fell_by(base: float, equity: float, limit: float, *, strictly: bool = False) -> bool:
    """Whether `equity` is `limit` (a fraction) of `base` or more below it (`strictly`:
    more). Within rounding of the threshold the values are taken as the decimals they
    print as: an equity exactly at a limit (a drawdown of exactly max_drawdown: HALTED)
    lands on the documented side, not on the one the float subtraction's error picks."""
    fell, bound = base - equity, limit * base
    if abs(fell - bound) > abs(bound) * REL_TOL:
        return fell > bound
    exact_fell = Decimal(repr(base)) - Decimal(repr(equity))
    exact_bound = Decimal(repr(limit)) * Decimal(repr(base))
    return exact_fell > exact_bound or (not strictly and exact_fell == exact_bound)
