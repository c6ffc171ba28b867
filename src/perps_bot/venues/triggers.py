"""Stop and take-profit orders on a simulated price path (SPEC 16).

A trigger order waits, queued, until the market reaches its trigger price, then acts as
a market order at that point:

* Trigger: a sell stop when the price is at or below its trigger, a buy stop at or
  above; a take-profit the other way round (a sell take-profit at or above). The price
  is the mark where the market data gives one (a quote's or a book snapshot's mark, a
  mark update), as the live venue's orders trigger on the exchange
  (`workingType=MARK_PRICE`): a wick of the last price alone does not stop a position
  out, and a mark past the trigger does even while the last price is not. A candle
  with a mark series' extremes inside it (a backtest's `--mark` file) has a mark at
  each path point (order_queue.mark_path). Without a mark (other candles: the path
  price) it is the last price (a book without a last trade: its mid). A mark update
  alone fires the order; it fills at the next market point, against that point's book.
* Fill: on a candle path point reached continuously from the previous point (the
  extremes and the close: the price passed through every level between them), the
  market order fills against a book around the trigger price; at a gap (the candle's
  open, a quote, a book snapshot, or a path point the order meets first because its
  latency made it live only after the move there began) it fills against the point's
  own book, i.e. worse than the trigger, as it does at a path point where the mark
  reached the trigger and the last price did not (the last went no further). Slippage
  and taker fees as for any market order.
* An entry's protective orders placed after it filled on the way to a candle path
  point (a resting limit crossed on the move between the extremes) meet the rest of
  that move, from the entry's price to the point (`leg_rest`): a stop between them
  fills at its trigger in that very move, as on the exchange; one already triggered
  at the entry's price fills at the point's own book, as at a gap.
"""

from dataclasses import replace

from perps_bot.domain import Order, OrderType, Side
from perps_bot.venues.book import touch_around
from perps_bot.venues.order_queue import MatchPoint


def point_price(point: MatchPoint) -> float | None:
    if point.mark is not None:
        return point.mark
    if point.last is not None:
        return point.last
    if point.bid is not None and point.ask is not None:
        return (point.bid + point.ask) / 2.0
    return None


def is_triggered(order: Order, price: float) -> bool:
    trigger = order.trigger_price
    assert trigger is not None
    falling = (order.order_type is OrderType.STOP_MARKET) == (order.side is Side.SELL)
    return price <= trigger if falling else price >= trigger


def triggered_point(
    order: Order, point: MatchPoint, spread_bps: float, live_ts: int
) -> MatchPoint | None:
    """Where a trigger order live since `live_ts` fills as a market order at `point`;
    None if not triggered. An order that reached the market after the move to a
    continuous point began did not see its prices: for it the point is a gap."""
    price = point_price(point)
    if price is None or not is_triggered(order, price):
        return None
    if not point.continuous or live_ts >= point.since:
        return point
    if point.mark is not None and point.last is not None and not is_triggered(order, point.last):
        return point  # the mark reached the trigger, the last price did not: at the market
    trigger = order.trigger_price
    assert trigger is not None
    bid, ask = touch_around(trigger, spread_bps)
    return MatchPoint(point.cutoff, bid, ask, trigger)


def leg_rest(order: Order, point: MatchPoint, live_ts: int, start: float) -> MatchPoint:
    """`point` as a trigger order live from `live_ts` meets it when it was placed on the
    move there, at `start` (the price of the fill that asked for it): that move's rest,
    passed through from `start` on, where the order was not triggered yet."""
    if not point.continuous or is_triggered(order, start):
        return point
    return replace(point, since=live_ts + 1)
