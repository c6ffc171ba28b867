"""The pure fill rules of the simulated venues (see venues.matching for how the engine
applies them): walking a book, slippage, limit crossings, partial resting fills, fees
and the documented intra-candle price path. No state, no I/O: each is tested alone."""

import math
from collections.abc import Container, Sequence
from decimal import ROUND_FLOOR

from perps_bot.domain import (
    BookSnapshot,
    Candle,
    MarketEvent,
    Order,
    OrderType,
    PublicTrade,
    Quote,
    Side,
)
from perps_bot.domain.instrument import grid_point, round_to_step
from perps_bot.venues.book import Level

#: Quantities below this are treated as zero (sizes are >= 1e-8 on every venue we use).
EPS = 1e-12


def walk_book(
    levels: Sequence[Level], size: float, side: Side, limit: float | None = None
) -> tuple[float, float]:
    """Consume `levels` (best first) for up to `size`; returns (quantity, notional).

    With `limit`, levels worse than it (above for a buy, below for a sell) are not taken.
    """
    filled = 0.0
    notional = 0.0
    for price, quantity in levels:
        if limit is not None and (price > limit if side is Side.BUY else price < limit):
            break
        take = min(quantity, size - filled)
        if take <= 0.0:
            continue
        filled += take
        notional += take * price
        if size - filled <= EPS:
            break
    return filled, notional


def with_slippage(side: Side, price: float, slippage_bps: float) -> float:
    """`price` moved `slippage_bps` against a taker on `side`."""
    return price * (1.0 + side.sign * slippage_bps / 1e4)


def market_price(
    levels: Sequence[Level], size: float, side: Side, slippage_bps: float
) -> float | None:
    """Average price of a market order of `size` against `levels`, slippage included.

    Past the last level the remainder is priced at the last level. None if no level.
    """
    if not levels:
        return None
    filled, notional = walk_book(levels, size, side)
    if size - filled > EPS:
        notional += (size - filled) * levels[-1][0]
    return with_slippage(side, notional / size, slippage_bps)


def marketable_take(
    levels: Sequence[Level],
    size: float,
    side: Side,
    limit: float,
    slippage_bps: float,
    step: float | None = None,
) -> tuple[float, float]:
    """Taker part of a limit order: (quantity, average price) at levels within `limit`.

    The slippage-adjusted price is capped at the limit (a limit order never fills
    worse than its limit). With `step`, the quantity is whole lots: levels whose
    quantities are not (a synthetic book's grow by 15% a level) are taken up to the lot
    below. Quantity 0.0 when nothing is marketable.
    """
    filled, notional = walk_book(levels, size, side, limit)
    if step is not None and step > 0.0 and filled > EPS:
        lots = round_to_step(filled, step, ROUND_FLOOR)
        if lots < filled:
            filled, notional = walk_book(levels, lots, side, limit) if lots > 0 else (0.0, 0.0)
    if filled <= EPS:
        return 0.0, 0.0
    price = with_slippage(side, notional / filled, slippage_bps)
    price = min(price, limit) if side is Side.BUY else max(price, limit)
    return filled, price


def is_crossed(side: Side, limit: float, best_opposite: float | None, last: float | None) -> bool:
    """Whether the market traded at or through a resting limit order's price.

    `best_opposite` is the best ask for a buy order (best bid for a sell).
    """
    if side is Side.BUY:
        return (best_opposite is not None and best_opposite <= limit) or (
            last is not None and last <= limit
        )
    return (best_opposite is not None and best_opposite >= limit) or (
        last is not None and last >= limit
    )


def resting_fill_quantity(
    remaining: float, fill_probability: float, u: float, v: float, step: float | None
) -> float:
    """Quantity a crossed resting order fills given two uniforms (see module rules).

    0.0 when the order does not fill at this crossing.
    """
    if u >= fill_probability:
        return 0.0
    if v < fill_probability:
        return remaining
    fraction = (v - fill_probability) / (1.0 - fill_probability)
    quantity = remaining * fraction
    if step is not None and step > 0:
        quantity = round(math.floor(quantity / step + 1e-9) * step, 12)
        if quantity <= EPS:
            quantity = min(step, remaining)
    if quantity <= EPS:
        return 0.0
    return min(quantity, remaining)


def on_step(quantity: float, step: float | None) -> float:
    """`quantity` put back on the lot grid when float arithmetic left it a hair off a
    whole number of steps (an order's remainder 0.3 - 0.1 is 0.19999999999999998): the
    ledger books a fill's size to the last digit, so a fill of that remainder would leave
    a dust position the close of the reported 0.2 flips. Anything further off is kept."""
    if step is None or step <= 0.0:
        return quantity
    point = grid_point(quantity, step)
    return point if point else quantity  # not a whole lot (none at all): kept


def fee_for(notional: float, bps: float) -> float:
    """Fee in quote currency (positive = cost) of a fill of `notional`."""
    return notional * bps / 1e4


def traded_range(trades: Sequence[PublicTrade]) -> tuple[float, float] | None:
    """(lowest, highest) price of `trades`; None without any."""
    if not trades:
        return None
    prices = [trade.price for trade in trades]
    return min(prices), max(prices)


def extremes(event: MarketEvent) -> tuple[float, float] | None:
    """(lowest, highest) price at which the event could cross a resting buy / sell: a
    book's best ask and bid and its public trades (not its `last`, which may be older
    than every order: order_queue.MatchPoint.through)."""
    if isinstance(event, Quote):
        return min(event.ask, event.last), max(event.bid, event.last)
    if isinstance(event, Candle):
        return event.low, event.high
    if isinstance(event, BookSnapshot):
        traded = traded_range(event.trades) or (math.inf, -math.inf)
        low = min(event.asks[0][0], traded[0]) if event.asks else traded[0]
        high = max(event.bids[0][0], traded[1]) if event.bids else traded[1]
        return low, high
    return None


def candle_path(candle: Candle, *, adaptive: bool = False) -> tuple[float, float, float, float]:
    """The documented intra-bar path: open, nearer extreme, other extreme, close.

    On a tie (open equidistant from high and low) the high comes first. `adaptive`:
    a candle that closes at or above its open visits its low first (it fell, then rose
    to the close), one that closes below visits its high first.
    """
    o, h, low = candle.open, candle.high, candle.low
    if adaptive:
        return (o, low, h, candle.close) if candle.close >= o else (o, h, low, candle.close)
    if h - o <= o - low:
        return o, h, low, candle.close
    return o, low, h, candle.close


def _positive(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


def order_problem(order: Order, open_ids: Container[str]) -> str | None:
    """Why a simulated venue refuses `order` at submit; None when it is acceptable."""
    if not _positive(order.size):
        return f"size must be a positive number, got {order.size}"
    if order.order_type is OrderType.LIMIT and not _positive(order.price):
        return f"limit order needs a positive limit price, got {order.price}"
    if order.order_type.is_trigger and not _positive(order.trigger_price):
        return f"{order.order_type} order needs a positive trigger price, got {order.trigger_price}"
    if order.client_id in open_ids:
        return "duplicate client id"
    return None
