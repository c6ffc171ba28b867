"""Live orders as the venue follows them: each exchange reply (cumulative executed
quantity, cost, status) becomes Fills for the part not seen before and lifecycle steps
through the one order state machine (domain.lifecycle).

- A fill is priced from the change in cumulative quote cost (the exchange's exact
  average for the first one). Its fee is the exchange's own when the reply carries one;
  Binance order replies do not, so it is estimated from the instrument's bps: taker for
  market orders, triggered stops and take-profits (market orders by then) and limit
  orders that filled on arrival, maker for limit fills found later.
- Quantities never go backwards: a stale reply cannot un-fill an order.
- A reply that already says FILLED for an order the bot has just sent is reported as
  two steps, accepted then filled, like every other venue.
"""

from dataclasses import dataclass, field
from typing import Any

from perps_bot.domain import (
    Fill,
    Instrument,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    fill_of,
    record_fill,
    transition,
)
from perps_bot.domain.numbers import finite_number
from perps_bot.venues.fill_rules import fee_for

EPS = 1e-12

#: ccxt's unified order status -> the final status it means.
FINAL_STATUS = {
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "rejected": OrderStatus.REJECTED,
    "expired": OrderStatus.EXPIRED,
}


@dataclass(slots=True)
class Tracked:
    """An order the venue watches for fills, and how much of it was reported already."""

    order: Order
    ccxt_symbol: str
    exchange_client_id: str
    seen_filled: float = 0.0  # executed quantity already turned into Fill objects
    seen_cost: float = 0.0
    seen_fee: float = 0.0
    reported: float = 0.0  # quantity of those fills already handed out by poll()
    sent_at: int = 0  # when its request was last sent (its receive window starts then)
    commission_reported: float = 0.0  # the exchange's commission already in handed-out fees
    #: executed before the venue followed it (an earlier run's, in the position the start
    #: adopted or booked by recovery): its trades' commission is not this venue's
    foreign_filled: float = 0.0
    #: a trigger order's market order once it triggered (venues.live.conditional)
    actual_id: str | None = None
    updates: list[OrderUpdate] = field(default_factory=list)

    @property
    def fills_id(self) -> str | None:
        """The exchange order whose trades are this order's fills."""
        return self.actual_id or self.order.exchange_id

    def hand_over_executed(self) -> None:
        """What it executed so far is booked elsewhere (by recovery into an earlier run,
        or in the position the start took): this venue hands out only what it executes
        from now on, charged only those trades' commission."""
        self.reported = self.foreign_filled = self.seen_filled
        self.commission_reported = 0.0

    @property
    def unreported(self) -> float:
        return self.seen_filled - self.reported

    @property
    def finished(self) -> bool:
        """Closed on the exchange and every fill handed out: nothing left to track."""
        return not self.order.status.is_open and self.unreported <= EPS


def unusable(reply: dict[str, Any], size: float) -> str | None:
    """Why an order reply cannot be the truth about its fills (None: it can be): an
    executed quantity that is not a number, negative, or beyond the order's `size`
    (0: unknown), or executed with no positive price. The venue books no fill from it
    and asks again; a guess would book money the exchange never moved."""
    raw = reply.get("filled")
    filled = num(raw)
    if raw is not None and (filled is None or filled < 0):
        return f"executed quantity {raw!r}"
    filled = filled or 0.0
    if size > 0 and filled > size * (1 + 1e-9) + EPS:
        return f"executed {filled:g} of an order of {size:g}"
    average, cost = num(reply.get("average")), num(reply.get("cost"))
    priced = (average is not None and average > 0) or (cost is not None and cost > 0)
    if filled > EPS and not priced:
        return f"executed {filled:g} at price {reply.get('average')!r}"
    return None


def apply_reply(
    tracked: Tracked, reply: Any, ts: int, instrument: Instrument, *, on_arrival: bool
) -> list[Fill]:
    """Bring `tracked` up to date with an order reply; returns the new fills and queues
    the lifecycle steps on `tracked.updates`. An unusable reply changes nothing."""
    if not isinstance(reply, dict) or unusable(reply, tracked.order.size) is not None:
        return []
    order = tracked.order
    if order.status in (OrderStatus.NEW, OrderStatus.UNKNOWN):
        tracked.updates.append(transition(order, OrderStatus.ACCEPTED, ts, "accepted"))
    fills = _new_fill(tracked, reply, ts, instrument, on_arrival=on_arrival)
    average = num(reply.get("average")) or 0.0
    if order.filled > 0 and average > 0:
        order.avg_price = average
    final = FINAL_STATUS.get(str(reply.get("status") or ""))
    if final is OrderStatus.FILLED and order.status.is_open:
        # the exchange's executed total is the order's size (rounding may differ)
        order.size = order.filled
        tracked.updates.append(transition(order, OrderStatus.FILLED, ts, "filled"))
    elif final is not None and order.status.is_open:
        reason = f"{final} by the exchange"
        tracked.updates.append(transition(order, final, ts, reason))
    return fills


def _new_fill(
    tracked: Tracked, reply: dict[str, Any], ts: int, instrument: Instrument, *, on_arrival: bool
) -> list[Fill]:
    order = tracked.order
    filled = max(num(reply.get("filled")) or 0.0, tracked.seen_filled)  # never backwards
    average = num(reply.get("average")) or 0.0
    cost = num(reply.get("cost"))
    if cost is None or cost <= 0:
        cost = filled * average
    delta = filled - tracked.seen_filled
    if delta <= EPS * max(1.0, filled):
        return []
    delta_cost = cost - tracked.seen_cost
    if tracked.seen_filled <= EPS and average > 0:
        price = average  # the whole fill so far: the exchange's exact average
    elif delta_cost > 0:
        price = delta_cost / delta
    else:
        price = average or (order.price or 0.0)
    # a triggered stop or take-profit became a market order: it took liquidity too
    taker = order.order_type is OrderType.MARKET or order.order_type.is_trigger or on_arrival
    liquidity = Liquidity.TAKER if taker else Liquidity.MAKER
    fee = _fee(reply, tracked, delta * price, instrument, liquidity)
    tracked.seen_filled = filled
    tracked.seen_cost = cost
    if order.status.is_open:
        if order.filled + delta > order.size:
            order.size = order.filled + delta  # the exchange executed more than we rounded
        tracked.updates.append(record_fill(order, delta, price, ts))
    return [fill_of(order, ts, delta, price, fee, liquidity)]


def _fee(
    reply: dict[str, Any],
    tracked: Tracked,
    notional: float,
    instrument: Instrument,
    liquidity: Liquidity,
) -> float:
    fee_info = reply.get("fee")
    reported = num(fee_info.get("cost")) if isinstance(fee_info, dict) else None
    if reported is not None:
        fee = reported - tracked.seen_fee
        tracked.seen_fee = reported
        return fee
    return fee_for(
        notional, instrument.taker_bps if liquidity is Liquidity.TAKER else instrument.maker_bps
    )


#: a number from an exchange field (None: missing, unreadable or not finite)
num = finite_number
