"""The orders one approved intent goes out as (orchestrator.order_flow): several for a
close above the exchange's largest market order, and plain rather than reduce-only
where the exchange nets every portfolio's position in one and judges reduce-only
against that.
"""

from collections.abc import Sequence

from perps_bot.domain import AccountView, Instrument, Order, OrderIntent
from perps_bot.domain.enums import MARKET
from perps_bot.risk.sizing import reduces


def closing_parts(
    instrument: Instrument, intent: OrderIntent, size: float, reduce_only: bool, held: float
) -> list[tuple[float, bool]]:
    """(size, reduce-only) of the orders an approved intent of `size` goes out as, with
    `held` the position. One order, the intent itself, unless it is a market order above
    the exchange's largest one that closes a position: a trader expects the bot to get
    out of any position it holds, so the close goes out as several reduce-only orders,
    each within the maximum (`Instrument.pieces`), followed, for a flip, by the entry of
    the other side as one order of its own, held back until the close is done
    (orchestrator.held_entries; refused like any entry when it is above the
    maximum itself: an entry that size is a profile to fix, never split). An entry above
    the maximum stays one order, which the instrument refuses (ABOVE_MAX_QUANTITY)."""
    if intent.order_type is not MARKET:
        return [(size, reduce_only)]
    most = instrument.max_order_quantity(MARKET)
    if most is None or size <= most or instrument.floor_size(size) <= most:
        return [(size, reduce_only)]
    closing = size if reduce_only else min(size, max(0.0, -intent.side.sign * held))
    if instrument.below_step(closing):
        return [(size, reduce_only)]
    parts = [(piece, True) for piece in instrument.pieces(closing, MARKET)]
    opening = size - closing
    if not instrument.below_step(opening):
        parts.append((opening, reduce_only))
    return parts


def netted_parts(
    netted: AccountView | None,
    intent: OrderIntent,
    parts: list[tuple[float, bool]],
    on_way: Sequence[Sequence[Order]],
) -> list[tuple[float, bool]]:
    """`parts` as the exchange takes them when it nets the portfolios (`netted`, the
    account's positions; None when each portfolio's position is its own): a close of
    this portfolio's position that does not also reduce the account's (held, and once
    every portfolio's orders on their way fill) goes out as a plain order. Reduce-only,
    the exchange refused it (the account short while this portfolio is long) or cut it
    to the account's position, and the portfolio stayed in for good."""
    if netted is None:
        return parts
    closing = sum(part for part, reduce_only in parts if reduce_only)
    if closing <= 0.0:
        return parts
    symbol, sign = intent.symbol, intent.side.sign
    held = netted.position_size(symbol)
    ahead = held + sum(
        o.side.sign * o.remaining
        for orders in on_way
        for o in orders
        if o.symbol == symbol and not o.order_type.is_trigger
    )
    if reduces(held, held + sign * closing) and reduces(ahead, ahead + sign * closing):
        return parts
    return [(part, False) for part, _ in parts]
