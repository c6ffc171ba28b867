"""Account-level caps for a run with several portfolios (SPEC 10).

Each portfolio's own risk gate keeps it within its limits; the exchange account holds
the sum of them, and the profile's `risk:` caps are about that account (the canary's
50 USDT per position, its 2x leverage). After a portfolio's gate approved an order,
this gate checks the account as it would be: the net position of the symbol over all
portfolios against `max_position_notional` (resized down to it when `resize_to_caps`,
else denied), and the account's gross notional over its equity against
`max_leverage`, both counting the orders of that side on their way (every portfolio's)
as filled. An order that shrinks the account's net position (held, and once the orders
of its side on their way fill) passes those; a flip is no shrink (one over
`max_leverage` is cut to the part that closes the net position when `resize_to_caps`,
as that part lowers it; else denied). Every order
counts against the account's `max_orders_per_minute`, and one that does not shrink it
against `max_order_notional` (cut down to it, or denied; a flip of the net position is
cut to the cap but never into the part that closes it): a portfolio's own limits,
higher or several times over, never lift the account's.
"""

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from perps_bot.config import RiskConfig
from perps_bot.domain import AccountView, DenialReason, Side
from perps_bot.risk.rate_window import rate_refusal, with_sent
from perps_bot.risk.sizing import CLOSE_ONLY, closing_part, order_cap_size, reduces

_REL_TOL = 1e-9


@dataclass(frozen=True, slots=True)
class AccountDecision:
    size: float  # 0.0: denied
    reason: DenialReason | None  # denied: why; approved: the cap that cut it, or None
    detail: str


class AccountGate:
    def __init__(self, cfg: RiskConfig, account: AccountView, symbols: list[str]) -> None:
        self.cfg = cfg
        self.account = account
        self.symbols = symbols
        self._approved_ts: deque[int] = deque()  # every portfolio's, in the last minute

    def activity(self) -> list[int]:
        """What a checkpoint keeps: the account's order times in the rate window."""
        return list(self._approved_ts)

    def restore_activity(self, saved: list[int]) -> None:
        self._approved_ts = deque(int(ts) for ts in saved)

    def count_sent(self, times: Iterable[int]) -> None:
        """Orders the account sent before this run started (RiskGate.count_sent)."""
        self._approved_ts = with_sent(self._approved_ts, times)

    def withdraw(self, now_ms: int) -> None:
        """The order passed last, at `now_ms`, did not go out (the instrument refused it):
        its place in the account's order rate is given back."""
        if self._approved_ts and self._approved_ts[-1] == now_ms:
            self._approved_ts.pop()

    def sent_more(self, now_ms: int, count: int) -> None:
        """The order passed at `now_ms` went out as `count` more orders than one (a split
        close): each takes its place in the account's order rate (RiskGate.sent_more)."""
        self._approved_ts.extend([now_ms] * count)

    def check(
        self,
        symbol: str,
        side: Side,
        size: float,
        price: float,
        in_flight: float = 0.0,
        now_ms: int | None = None,
    ) -> AccountDecision:
        """`in_flight`: the quantity of the symbol's orders on this side, of any portfolio,
        approved and not filled yet; the caps count them as filled (see RiskGate.check).
        `now_ms`: the order's time, for the account's order rate (None: not counted)."""
        if now_ms is not None:
            limit = self.cfg.max_orders_per_minute
            too_many = rate_refusal(self._approved_ts, now_ms, limit)
            if too_many is not None:
                return AccountDecision(0.0, DenialReason.ORDER_RATE_LIMIT, f"account: {too_many}")
        decision = self._caps(symbol, side, size, price, in_flight)
        if now_ms is not None and decision.size > 0:
            self._approved_ts.append(now_ms)
        return decision

    def _caps(
        self, symbol: str, side: Side, size: float, price: float, in_flight: float
    ) -> AccountDecision:
        held = self.account.position_size(symbol)
        current = held + side.sign * in_flight  # the position if they all fill
        # a shrink on the position held and on the one the orders on their way make (a
        # flip, even to a position as big, or a second close of one position, is not)
        if reduces(held, held + side.sign * size) and reduces(current, current + side.sign * size):
            return AccountDecision(size, None, "")
        # the cap that cut the order (its line says so), and why
        cut: tuple[DenialReason | None, str] = (None, "")
        close = closing_part(held, current, side.sign)
        order_cap, close_only = order_cap_size(self.cfg.max_order_notional, price, close)
        if size > order_cap * (1 + _REL_TOL):
            why = f"account: order notional {size * price:.2f} > {self.cfg.max_order_notional:g}"
            if not self.cfg.resize_to_caps:
                return AccountDecision(0.0, DenialReason.MAX_ORDER_NOTIONAL, why)
            cut = (DenialReason.MAX_ORDER_NOTIONAL, why + close_only)
            size = order_cap
            if close_only:  # a plain close of the account's position now
                return AccountDecision(size, *cut)
        new = current + side.sign * size
        cap = self.cfg.max_position_notional / price
        if abs(new) > cap * (1 + _REL_TOL):
            room = cap - abs(current) if current * side.sign >= 0 else cap + abs(current)
            why = (f"account {symbol} position would be {abs(new) * price:.2f}"
                   f" > {self.cfg.max_position_notional:g}")  # fmt: skip
            if not self.cfg.resize_to_caps or room <= 0:
                return AccountDecision(0.0, DenialReason.MAX_POSITION_NOTIONAL, why)
            if room < size:
                size, cut = room, (DenialReason.MAX_POSITION_NOTIONAL, why)
            new = current + side.sign * size
        gross = abs(new) * price + sum(
            abs(self.account.position_size(s)) * self.account.mark_price(s)
            for s in self.symbols
            if s != symbol
        )
        equity = self.account.equity()
        if equity <= 0 or gross / equity > self.cfg.max_leverage * (1 + _REL_TOL):
            lev = gross / equity if equity > 0 else float("inf")
            why = f"account leverage would be {lev:.2f} > {self.cfg.max_leverage:g}"
            if close > 0 and self.cfg.resize_to_caps:  # a flip: its close lowers it
                return AccountDecision(close, DenialReason.MAX_LEVERAGE, why + CLOSE_ONLY)
            return AccountDecision(0.0, DenialReason.MAX_LEVERAGE, why)
        return AccountDecision(size, *cut)
