"""How much of an order closes a position, and the size and note a cap cuts it to.

Shared by the portfolio's risk gate (`risk.gate`) and the account's (`risk.account_gate`),
so the two cut a flip the same way: to the order cap or to its close, never into the
close (a risk limit never keeps the bot from getting out).
"""

from perps_bot.risk.equity_limits import REL_TOL as _REL_TOL

CLOSE_ONLY = " (the close only)"  # the resize note of a flip cut to its close


def reduces(held: float, after: float) -> bool:
    """Whether going from position `held` to `after` reduces exposure: towards zero on
    the same side, or to zero (within rounding), never across it."""
    if held == 0.0:
        return False
    return abs(after) <= abs(held) * _REL_TOL or (after * held > 0.0 and abs(after) < abs(held))


def closing_part(held: float, ahead: float, direction: int) -> float:
    """How much of an order of `direction` (+1 buy, -1 sell) closes: the position once
    the orders of its side on their way fill (`ahead`), while that is still on the side
    of the one `held` and the order goes against it; 0.0 when it closes nothing."""
    return abs(ahead) if held * ahead > 0.0 and direction * ahead < 0.0 else 0.0


def order_cap_size(max_order_notional: float, price: float, close: float) -> tuple[float, str]:
    """The largest size `max_order_notional` lets an order go out with, and the note a
    resize to it adds: the cap's size, or the order's `close` (closing_part) when that is
    bigger, as a close is exempt from the caps and a flip is cut to the cap but never
    into its close (long 0.6 at 100, cap 50, a sell of 1.0: 0.6, not 0.5)."""
    cap = max_order_notional / price
    return (close, CLOSE_ONLY) if close >= cap else (cap, "")


def resize_note(original: float, size: float, detail: str, close_only: str = "") -> str:
    """The detail of an order a cap cut from `original` to `size`: the cap's `detail`,
    and CLOSE_ONLY when the cut left a flip its close alone."""
    return f"resized {original:g} -> {size:g}{close_only}: {detail}"
