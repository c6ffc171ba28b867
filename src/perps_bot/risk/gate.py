"""The risk gate: every order intent passes here between the strategy and the venue.

It enforces the profile's `risk:` limits whatever the strategy asks (the
canary caps are nothing but the canary profile's values here), and it owns the
trading state: ACTIVE, REDUCING (only exposure-reducing orders pass) or HALTED.

Check order (the first failing check decides the denial code):
1. HALTED: nothing passes. Code MAX_DRAWDOWN_HALT when the drawdown halted
   trading, TRADING_HALTED when an operator (or the orchestrator) called halt().
2. CIRCUIT_BREAKER_OPEN: the venue's breaker is open; nothing can be sent.
3. STALE_MARKET_DATA: no data for the symbol yet, data older than
   `stale_after`, or no usable price.
4. ORDER_RATE_LIMIT: `max_orders_per_minute` approved orders in the sliding
   60 s window ending at `now_ms` (only approved orders count: denied ones
   never reach the exchange, nor do those refused after the gate: `withdraw`; a close
   sent as several orders counts each of them: `sent_more`; a live restart counts the
   orders the account sent in the minute before it: `count_sent`).
5. REDUCE_ONLY_VIOLATION: a reduce_only intent that would increase or flip
   the position.
6. REDUCING state: an exposure-increasing order is denied with the code of
   the cause (MAX_DRAWDOWN_HALT past `reducing_drawdown`, DAILY_LOSS_LIMIT after
   the day's loss limit); an order that would flip the position is cut to a
   plain close when `resize_to_caps` (a close is the exposure reduction the
   state asks for), else denied the same way. What passes is sent reduce-only.
   A reduce-only intent reduces when it does on the position held (the venue clips
   it to what is left when it fills); any other intent only when it also does on the
   position once the orders of its side in flight fill: two plain closes of one
   position are a flip, never a reduction.
7. For exposure-increasing orders only (a reducing order is bounded by the
   position, and a risk limit must never keep the bot from getting out), on the
   position the symbol would have once the orders on the same side still in flight
   fill (`in_flight`: several orders must not pass one by one a cap they break together):
   MAX_ORDER_NOTIONAL and MAX_POSITION_NOTIONAL (resized down to the cap when
   `resize_to_caps` and something is left, else denied; the order cap is on the whole
   order, as the exchange gets one, but a flip is never cut into its close: at most to
   the close alone, `order_cap_size`), MAX_LEVERAGE (the
   symbol's configured leverage above `max_leverage`, or account gross notional
   after the order / equity above it), INSUFFICIENT_MARGIN (extra initial
   margin, over the position held, above the available balance: the orders in
   flight have not paid theirs yet). These two deny the order, but a flip's close
   lowers the leverage and frees margin, so with `resize_to_caps` a flip they
   refuse is cut to its close (`closing_part`) and passes as a close would.

The trading state and the equity limits that set it (drawdown, daily loss) live in
`risk.equity_limits`, which `RiskGate` extends.

Floats, not Decimal: these are limit comparisons on notionals, and a relative
tolerance of 1e-9 keeps an order resized exactly to a cap from failing the cap
by a rounding error.
"""

from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from perps_bot.config import RiskConfig
from perps_bot.domain import DAY_MS, AccountView, DenialReason, OrderIntent
from perps_bot.domain.enums import HALTED, LIMIT, REDUCING, SELL
from perps_bot.domain.pickled import by_fields
from perps_bot.domain.timeutil import parse_duration
from perps_bot.risk.equity_limits import REL_TOL as _REL_TOL
from perps_bot.risk.equity_limits import EquityLimits
from perps_bot.risk.rate_window import rate_refusal, with_sent
from perps_bot.risk.sizing import CLOSE_ONLY, closing_part, order_cap_size, reduces, resize_note

__all__ = ["DAY_MS", "MarginRequired", "RiskDecision", "RiskGate", "cap_price"]

MarginRequired = Callable[[str, float, float], float]


@dataclass(slots=True)
class RiskDecision:
    """The gate's answer. `size` is what may be sent (0.0 when denied). `reason` is the
    denial code, or on an approval the cap that resized the order (None if untouched).
    `reduce_only`: send it reduce-only whatever the intent said (approved in the REDUCING
    state: the exchange then clips it to the position left, and exempts it from the
    minimum notional, so a small remainder can be closed)."""

    approved: bool
    size: float
    reason: DenialReason | None
    detail: str
    reduce_only: bool = False

    def __init__(
        self,
        approved: bool,
        size: float,
        reason: DenialReason | None,
        detail: str,
        reduce_only: bool = False,
    ) -> None:
        """Written out, not generated (perps_bot.domain.record says why)."""
        self.approved = approved
        self.size = size
        self.reason = reason
        self.detail = detail
        self.reduce_only = reduce_only

    def __reduce__(self) -> tuple[object, ...]:
        """Copied and pickled through `__init__` (perps_bot.domain.pickled)."""
        return by_fields(self)


def cap_price(intent: OrderIntent, last: float) -> float:
    """The price the caps value an order at: the last price, or a sell limit's price
    above it, where it fills (a short opened at 120 holds 120's notional; the exchange
    values the order there too). Buys fill at the last price or their limit, whichever
    is lower, and sell limits below the last price at about the last price."""
    at = intent.limit_price
    if intent.order_type is LIMIT and intent.side is SELL and at is not None and at > last:
        return at
    return last


class RiskGate(EquityLimits):
    """Approves, resizes or denies order intents and tracks the trading state."""

    def __init__(
        self,
        cfg: RiskConfig,
        account: AccountView,
        margin_required: MarginRequired | None = None,
    ) -> None:
        super().__init__(cfg)
        self.account = account
        self._margin_required: MarginRequired = margin_required or self._default_margin
        self._stale_after_ms = parse_duration(cfg.stale_after)
        self._last_data: dict[str, int] = {}
        self._approved_ts: deque[int] = deque()
        self._breaker_open = False
        self.denials: Counter[DenialReason] = Counter()
        self.resizes: Counter[DenialReason] = Counter()

    # ---- inputs -------------------------------------------------------------------

    def on_market_data(self, symbol: str, ts: int) -> None:
        """Record that `symbol` had market data at `ts` (called on every event)."""
        self._last_data[symbol] = ts

    def set_circuit_breaker(self, is_open: bool) -> None:
        self._breaker_open = is_open

    def activity(self) -> tuple[object, ...]:
        """What a checkpoint keeps besides the trading state: the rate window, the data
        times, the breaker and the counters."""
        return (dict(self._last_data), list(self._approved_ts), self._breaker_open,
                dict(self.denials), dict(self.resizes))  # fmt: skip

    def restore_activity(self, saved: Any) -> None:
        last_data, approved, breaker, denials, resizes = saved
        self._last_data = dict(last_data)
        self._approved_ts = deque(approved)
        self._breaker_open = bool(breaker)
        self.denials = Counter(denials)
        self.resizes = Counter(resizes)

    def count_sent(self, times: Iterable[int]) -> None:
        """Orders sent before this run started, at `times` (the account's last minute, on
        a live restart): they take their places in the order rate like its own."""
        self._approved_ts = with_sent(self._approved_ts, times)

    def withdraw(self, now_ms: int) -> None:
        """The order approved last, at `now_ms`, did not go out (refused after the gate:
        the account's caps, the instrument): its place in the order rate is given back."""
        if self._approved_ts and self._approved_ts[-1] == now_ms:
            self._approved_ts.pop()

    def sent_more(self, now_ms: int, count: int) -> None:
        """The order approved at `now_ms` went out as `count` more orders than one (a close
        above the exchange's largest market order, split: orchestrator.order_flow): each
        one reaches the exchange, so each takes its place in the order rate."""
        self._approved_ts.extend([now_ms] * count)

    # ---- the check ----------------------------------------------------------------

    def check(
        self, intent: OrderIntent, now_ms: int, price: float, in_flight: float = 0.0
    ) -> RiskDecision:
        """Approve (possibly resized) or deny `intent` at time `now_ms` and last price `price`
        (the caps value it at `cap_price`).
        `in_flight`: the quantity of the symbol's orders on the intent's side approved and
        not filled yet (open at the venue, or earlier in the same batch). The caps count
        them as filled (the position the account gets if they all fill); a reduce-only
        intent reduces if it does on the position held (the exchange clips it), any
        other intent if it does on both."""
        size = intent.size
        symbol = intent.symbol
        if not size > 0.0:
            # a strategy's sizing that came out 0 (or not a number): no order the
            # instrument trades, refused with its code (a venue's rejection it is not)
            return self._deny(
                DenialReason.BELOW_MIN_QUANTITY, f"order size must be positive (got {size})"
            )

        blocked = self.blocked(symbol, now_ms, price)
        if blocked is not None:
            return self._deny(*blocked)
        price = cap_price(intent, price)
        recent = self._approved_ts

        current = self.account.position_size(symbol)
        direction = intent.side.sign
        new = current + direction * size
        reducing = reduces(current, new)
        ahead = current + direction * in_flight  # the position if they all fill
        # the venue clips a reduce-only order to the position left when it fills; any
        # other order reduces only if it still does after the orders of its side on
        # their way (two closes of one position are a flip)
        base = current if intent.reduce_only else ahead
        reducing = reducing and reduces(base, base + direction * size)

        if intent.reduce_only and not reducing:
            what = "flip" if current * new < 0.0 else "increase"
            return self._deny(
                DenialReason.REDUCE_ONLY_VIOLATION,
                f"reduce-only {intent.side} {size:g} would {what} position {current:g} {symbol}",
            )

        resized_by: DenialReason | None = None
        notes: list[str] = []
        if self.state is REDUCING and not reducing:
            cause = (
                DenialReason.MAX_DRAWDOWN_HALT
                if self._drawdown_reducing is not None
                else DenialReason.DAILY_LOSS_LIMIT
            )
            close = closing_part(current, base, direction)  # > 0: a flip (it is no reduction)
            if not (close > 0.0 and self.cfg.resize_to_caps):
                return self._deny(
                    cause, f"reduce-only mode ({self.state_detail}): order would raise exposure"
                )
            notes.append(f"cut {size:g} -> {close:g} to close only ({self.state_detail})")
            size, reducing, resized_by = close, True, cause

        if not reducing:
            outcome = self._check_increase(symbol, direction, ahead, size, price, current)
            if isinstance(outcome, RiskDecision):
                return outcome
            new_size, binding, note = outcome
            if binding is not None:
                size, resized_by = new_size, binding
                notes.append(note)

        recent.append(now_ms)
        if resized_by is not None:
            self.resizes[resized_by] += 1
        detail = "; ".join(notes) or "approved"
        return RiskDecision(True, size, resized_by, detail, self.state is REDUCING)

    def blocked(self, symbol: str, now_ms: int, price: float) -> tuple[DenialReason, str] | None:
        """(code, detail) of the checks 1-4 an order of `symbol` fails at `now_ms`,
        whatever the order (the trading state, the breaker, the market data, the
        order rate); None when it passes them. Counts no denial."""
        if self.state is HALTED:
            code = (
                DenialReason.TRADING_HALTED
                if self._manual_halt is not None
                else DenialReason.MAX_DRAWDOWN_HALT
            )
            return code, f"trading halted: {self.state_detail}"
        if self._breaker_open:
            return DenialReason.CIRCUIT_BREAKER_OPEN, "venue circuit breaker is open"
        stale = self._stale(symbol, now_ms, price)
        if stale is not None:
            return DenialReason.STALE_MARKET_DATA, stale
        too_many = rate_refusal(self._approved_ts, now_ms, self.cfg.max_orders_per_minute)
        if too_many is not None:
            return DenialReason.ORDER_RATE_LIMIT, too_many
        return None

    def fresh(self, symbol: str, now_ms: int, price: float) -> bool:
        """Whether the symbol's market data lets an order through at `now_ms`."""
        return self._stale(symbol, now_ms, price) is None

    def _stale(self, symbol: str, now_ms: int, price: float) -> str | None:
        last = self._last_data.get(symbol)
        if last is None:
            return f"no market data yet for {symbol}"
        age = now_ms - last
        if age > self._stale_after_ms:
            limit = self.cfg.stale_after
            return f"market data for {symbol} is {age / 1000:g}s old (stale_after {limit})"
        if not price > 0.0:
            return f"no usable price for {symbol} (got {price})"
        return None

    def _check_increase(
        self, symbol: str, direction: int, current: float, size: float, price: float, held: float
    ) -> RiskDecision | tuple[float, DenialReason | None, str]:
        """Caps, leverage and margin for an exposure-increasing order of `direction` (+1
        buy, -1 sell), `current` the position once the orders in flight fill, `held` the
        one held (the available balance has paid for no more). Returns a denial, or (size,
        the cap that resized it or None, note)."""
        cfg = self.cfg
        binding: DenialReason | None = None
        note = ""
        original = size

        close = closing_part(held, current, direction)
        order_cap, close_only = order_cap_size(cfg.max_order_notional, price, close)
        if size > order_cap * (1.0 + _REL_TOL):
            detail = (
                f"order notional {size * price:.2f} > max_order_notional {cfg.max_order_notional:g}"
            )
            if not cfg.resize_to_caps:
                return self._deny(DenialReason.MAX_ORDER_NOTIONAL, detail)
            size, binding = order_cap, DenialReason.MAX_ORDER_NOTIONAL
            note = resize_note(original, size, detail, close_only)
            if close_only:  # a plain close now: bounded by the position, as any close
                return size, binding, note

        # the order moves the position towards `direction`, so the new position has that sign
        position_cap = cfg.max_position_notional / price
        room = position_cap - direction * current
        if direction * (current + direction * size) > position_cap * (1.0 + _REL_TOL):
            detail = (
                f"position notional {abs(current + direction * size) * price:.2f} > "
                f"max_position_notional {cfg.max_position_notional:g}"
            )
            if not cfg.resize_to_caps or room <= original * _REL_TOL:
                if cfg.resize_to_caps:
                    detail += f" (position {current:g} leaves no room)"
                return self._deny(DenialReason.MAX_POSITION_NOTIONAL, detail)
            size, binding = room, DenialReason.MAX_POSITION_NOTIONAL
            note = resize_note(original, size, detail)

        refused = self._leverage_or_margin(symbol, current + direction * size, price, held)
        if refused is None:
            return size, binding, note
        if close > 0.0 and cfg.resize_to_caps:  # a flip: its close alone lowers both
            return close, refused[0], resize_note(original, close, refused[1], CLOSE_ONLY)
        return self._deny(*refused)

    def _leverage_or_margin(
        self, symbol: str, new: float, price: float, held: float
    ) -> tuple[DenialReason, str] | None:
        """(code, detail) of the leverage or margin check that going from position `held`
        to `new` of `symbol` at `price` fails, None when it passes them."""
        cfg = self.cfg
        configured = self.account.leverage(symbol)
        if configured > cfg.max_leverage:
            return (
                DenialReason.MAX_LEVERAGE,
                f"{symbol} leverage is set to {configured:g}x > max_leverage {cfg.max_leverage:g}x",
            )
        equity = self.account.equity()
        gross = abs(new) * price + self._other_notional(symbol)
        if equity <= 0.0:
            return DenialReason.MAX_LEVERAGE, f"equity {equity:.2f} is not positive"
        if gross / equity > cfg.max_leverage * (1.0 + _REL_TOL):
            return (
                DenialReason.MAX_LEVERAGE,
                f"leverage after the order {gross / equity:.2f}x (gross notional {gross:.2f} / "
                f"equity {equity:.2f}) > max_leverage {cfg.max_leverage:g}x",
            )

        extra = self._margin_required(symbol, new, price) - self._margin_required(
            symbol, held, price
        )
        available = self.account.available_balance()
        if extra > available:
            return (
                DenialReason.INSUFFICIENT_MARGIN,
                f"order needs {extra:.2f} more initial margin, {available:.2f} available",
            )
        return None

    def _other_notional(self, symbol: str) -> float:
        """Gross notional of the positions on the other symbols this gate has seen data for."""
        total = 0.0
        account = self.account
        for other in self._last_data:
            if other == symbol:
                continue
            size = account.position_size(other)
            if size != 0.0:
                mark = account.mark_price(other) or account.entry_price(other)
                total += abs(size) * mark
        return total

    def _default_margin(self, symbol: str, signed_size: float, price: float) -> float:
        """Initial margin when no margin model is given: notional / configured leverage."""
        leverage = self.account.leverage(symbol)
        return abs(signed_size) * price / (leverage if leverage > 0.0 else 1.0)

    def _deny(self, reason: DenialReason, detail: str) -> RiskDecision:
        self.denials[reason] += 1
        return RiskDecision(False, 0.0, reason, detail)
