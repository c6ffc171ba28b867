"""The one description of a tradable contract, and the one rule that turns a wanted
order size and price into what the exchange would accept (SPEC 8).

Every venue, paper or live, receives orders that went through `Instrument.prepare`:
sizes floored to the step, limit prices rounded to the tick on the passive side,
minimum quantity, maximum quantity (Binance: LOT_SIZE, and MARKET_LOT_SIZE for market
orders) and minimum notional (a market order's at the mark price, as Binance counts
it) enforced. So a dry run can never fill a size that live would refuse, and a backtest
trades the sizes the exchange would.

Rounding goes through Decimal built from each float's shortest repr: 0.3 is three
steps of 0.1, not two (float division would floor 0.3 / 0.1 = 2.9999999999999996);
a value within float noise of a grid point (0.3 - 0.1 = 0.19999999999999998) is that
point.
It runs once per order, never per market event, so its cost does not matter.
"""

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import cache
from typing import Final

from perps_bot.domain.enums import (
    BUY,
    LIMIT,
    STOP_MARKET,
    TAKE_PROFIT_MARKET,
    DenialReason,
    OrderType,
    Side,
)
from perps_bot.domain.pickled import by_fields

#: A maintenance tier row: (notional_floor, maintenance_margin_rate, maintenance_amount).
TierRow = tuple[float, float, float]

_EPS = 1e-12
#: the most a computed value's float error can put it off a grid point, in steps
_NOISE_STEPS = 1e-6


class InstrumentRefusal(Exception):
    """An order the instrument's rules refuse before it exists (below a minimum, above
    a maximum)."""

    def __init__(self, reason: DenialReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True, unsafe_hash=True)
class PreparedOrder:
    """Size and (limit) price as they will be sent: multiples of step and tick."""

    size: Final[float]
    price: Final[float | None]

    def __init__(self, size: float, price: float | None) -> None:
        """Written out, not generated (perps_bot.domain.record says why)."""
        self.size = size
        self.price = price

    def __reduce__(self) -> tuple[object, ...]:
        """Copied and pickled through `__init__` (perps_bot.domain.pickled)."""
        return by_fields(self)


@dataclass(frozen=True, slots=True)
class Instrument:
    """A linear perpetual: our symbol, the exchange's, its filters, tiers and fees.

    `contract_size` is base units per contract (1 for Binance USDM linear perps);
    sizes everywhere in the bot are base units. Fees are bps of notional (a
    negative maker fee is a rebate). `max_quantity` is the largest order (None: no
    limit), `max_market_quantity` the largest market order when it is lower.
    """

    symbol: str
    exchange_symbol: str
    tick_size: float
    step_size: float
    min_quantity: float
    min_notional: float
    tiers: tuple[TierRow, ...]
    maker_bps: float
    taker_bps: float
    contract_size: float = 1.0
    max_quantity: float | None = None
    max_market_quantity: float | None = None
    #: Binance's PERCENT_PRICE (multiplierUp, multiplierDown): a limit buy above
    #: mark * up or a limit sell below mark * down is refused (None: no band)
    price_band: tuple[float, float] | None = None
    #: Binance's MAX_NUM_ALGO_ORDERS: the most open stop and take-profit orders of the
    #: symbol (None: no limit)
    max_algo_orders: int | None = None

    @property
    def price_decimals(self) -> int:
        """Decimals a price on this instrument's tick grid needs (tick 0.01: 2)."""
        return _decimals(self.tick_size)

    @property
    def size_decimals(self) -> int:
        """Decimals a size in whole steps needs (step 0.001: 3)."""
        return _decimals(self.step_size)

    def floor_size(self, size: float) -> float:
        """`size` rounded down to a whole number of steps (never trade more than asked)."""
        return round_to_step(size, self.step_size, ROUND_FLOOR)

    def below_step(self, size: float) -> bool:
        """True when `size` floors to no step at all (nothing the exchange could trade).
        Two steps or more surely floor to at least one: no rounding needed for them."""
        step = self.step_size
        if step > 0.0 and size >= 2.0 * step:
            return False
        return self.floor_size(size) <= 0.0

    def round_price(self, price: float, side: Side) -> float:
        """A limit price on the tick grid, on the passive side: a buy never pays more and a
        sell never receives less than asked."""
        mode = ROUND_FLOOR if side is BUY else ROUND_CEILING
        return round_to_step(price, self.tick_size, mode)

    def prepare(
        self,
        side: Side,
        size: float,
        order_type: OrderType,
        limit_price: float | None,
        reduce_only: bool,
        reference_price: float,
        mark_price: float = 0.0,
    ) -> PreparedOrder:
        """The order as the exchange would accept it, or InstrumentRefusal.

        The minimum notional is checked at the limit price; a market order has none, and
        Binance counts it at the mark price (USDM filters: "Since MARKET orders have no
        price, the mark price is used"): at `mark_price`, or at `reference_price` (the
        last traded price) while no mark is known (0). Reduce-only orders are exempt
        from it, as on Binance, so a small remainder can always be closed. The maximum
        quantity holds for every order, reduce-only too (Binance refuses them: -4005),
        and so does the price band around the mark (`price_band`).
        """
        rounded = self.floor_size(size)
        if rounded <= _EPS or rounded < self.min_quantity - _EPS:
            raise InstrumentRefusal(
                DenialReason.BELOW_MIN_QUANTITY,
                f"{self.symbol} size {size:.10g} rounds to {rounded:.10g}, below the minimum"
                f" quantity {self.min_quantity:g} (step {self.step_size:g})",
            )
        most = self.max_order_quantity(order_type)
        if most is not None and rounded > most * (1 + _EPS):
            raise InstrumentRefusal(
                DenialReason.ABOVE_MAX_QUANTITY,
                f"{self.symbol} size {rounded:.10g} is above the maximum quantity {most:g}"
                f" of a {order_type.lower()} order",
            )
        price: float | None = None
        if order_type is LIMIT:
            price = limit_price  # a missing or bad price is the venue's to reject
            if limit_price is not None and limit_price > 0:
                price = self.round_price(limit_price, side)
                self._within_band(side, price, mark_price)
        at = price if price is not None and price > 0 else mark_price or reference_price
        if not reduce_only and self.min_notional > 0 and rounded * at < self.min_notional - _EPS:
            raise InstrumentRefusal(
                DenialReason.BELOW_MIN_NOTIONAL,
                f"{self.symbol} notional {rounded * at:.4f} is below the minimum"
                f" {self.min_notional:g}",
            )
        return PreparedOrder(rounded, price)

    def _within_band(self, side: Side, price: float, mark: float) -> None:
        """InstrumentRefusal for a limit price outside the PERCENT_PRICE band around the
        mark (Binance USDM: a buy at most mark * multiplierUp, a sell at least mark *
        multiplierDown; -4016 / -4024). Unchecked while no mark is known."""
        if self.price_band is None or mark <= 0:
            return
        up, down = self.price_band
        if side is BUY and price > mark * up * (1 + _EPS):
            bound, said = mark * up, "above"
        elif side is not BUY and price < mark * down * (1 - _EPS):
            bound, said = mark * down, "below"
        else:
            return
        raise InstrumentRefusal(
            DenialReason.PRICE_OUTSIDE_BAND,
            f"{self.symbol} {side} limit price {price:.10g} is {said} {bound:.10g}, the"
            f" exchange's band around the mark {mark:.10g}",
        )

    def max_order_quantity(self, order_type: OrderType) -> float | None:
        """The largest order of `order_type` the exchange takes (None: no limit). A stop
        or take-profit becomes a market order: Binance holds it to MARKET_LOT_SIZE too."""
        if order_type is not LIMIT and self.max_market_quantity is not None:
            if self.max_quantity is None:
                return self.max_market_quantity
            return min(self.max_quantity, self.max_market_quantity)
        return self.max_quantity

    def check_protection(
        self, position: float, stop: bool, take_profit: bool, others: int = 0
    ) -> None:
        """InstrumentRefusal (ABOVE_MAX_QUANTITY) when a stop and / or take-profit for a
        position of `position` takes more orders (`pieces`: each within the largest
        market order) than the exchange keeps open for the symbol (`max_algo_orders`)
        beside the `others` the account has there already (other portfolios' on the
        account: the exchange counts every open order of the symbol): the ones beyond it
        would be refused (Binance: -4045), the position protected in part only."""
        most = self.max_algo_orders
        if most is None or not (stop or take_profit):
            return
        needed = self.protective_orders(position, stop, take_profit)
        if needed + others > most:
            theirs = f" beside the account's other {others}" if others else ""
            raise InstrumentRefusal(
                DenialReason.ABOVE_MAX_QUANTITY,
                f"{self.symbol} position {position:.10g} would need {needed} protective"
                f" orders{theirs}; the exchange keeps at most {most} open stop and"
                " take-profit orders per symbol",
            )

    def protective_orders(self, position: float, stop: bool, take_profit: bool) -> int:
        """How many orders a stop and / or take-profit of a position of `position` take,
        each kind as `pieces` within the largest market order."""
        kinds = [k for k, wanted in ((STOP_MARKET, stop), (TAKE_PROFIT_MARKET, take_profit))
                 if wanted]  # fmt: skip
        return sum(len(self.pieces(position, kind)) for kind in kinds)

    def pieces(self, size: float, order_type: OrderType) -> tuple[float, ...]:
        """`size` as the fewest orders of `order_type` the exchange takes, each within its
        maximum quantity, in equal whole steps (the larger ones first): 300 BTC at a
        market maximum of 120 is 100 + 100 + 100, never a remainder below the minimum
        quantity. A size within the maximum (or no maximum) is itself, untouched."""
        most = self.max_order_quantity(order_type)
        if most is None or size <= most * (1 + _EPS):
            return (size,)
        step = Decimal(repr(float(self.step_size))) if self.step_size > 0 else None
        if step is None:  # no grid: equal floats
            count = math.ceil(size / most)
            return (size / count,) * count
        steps = int(Decimal(repr(self.floor_size(size))) / step)
        most_steps = int((Decimal(repr(float(most))) / step).to_integral_value(ROUND_FLOOR))
        count = -(-steps // most_steps)
        each, extra = divmod(steps, count)
        places = self.size_decimals
        return tuple(
            float(round((each + (1 if i < extra else 0)) * step, places)) for i in range(count)
        )


def round_to_step(value: float, step: float, rounding: str) -> float:
    """`value` rounded to a multiple of `step` with the Decimal rounding mode given.

    Most orders are already on the grid (fixed sizes, sums of steps): when the float
    quotient is a whole number n, on the side the rounding allows, the answer is n
    steps, formatted to the step's decimals, without Decimal arithmetic. A value within
    float noise of n steps on the other side is n steps too: a size or price the bot
    computed (a target 0.3 less the 0.1 held is 0.19999999999999998, 3 * 0.1 is
    0.30000000000000004) means the grid point, not the step below or the tick above."""
    if step <= 0:
        return value
    point = grid_point(value, step)
    if point is not None:
        return point
    quotient = value / step
    whole = round(quotient)
    near = abs(quotient - whole) <= 1e-9 * max(1.0, abs(whole))
    if near and (quotient > whole) == (rounding == ROUND_FLOOR):  # on the side allowed
        return steps_of(whole, step)
    steps = (Decimal(repr(float(value))) / Decimal(repr(float(step)))).to_integral_value(
        rounding=rounding
    )
    return float(steps * Decimal(repr(float(step))))


def grid_point(value: float, step: float) -> float | None:
    """The multiple of `step` (> 0) that `value` is within float noise of, formatted to
    the step's decimals; None when it is further off. A size or price the bot computed
    (0.3 - 0.1 is 0.19999999999999998) means that grid point."""
    quotient = value / step
    whole = round(quotient)
    if abs(quotient - whole) <= min(1e-9 * max(1.0, abs(whole)), _NOISE_STEPS):
        return steps_of(whole, step)
    return None


def steps_of(whole: int, step: float) -> float:
    """`round(whole * step, decimals of step)`: the float nearest the decimal `whole`
    steps make. With the step as `units` of 10**-decimals, that decimal is the integer
    `whole * units` over 10**decimals, and dividing the two (both exact floats below
    2**50) gives its nearest float in one division, where `round` formats and parses
    the digits (its cost, twice per order, was a percent of a backtest)."""
    decimals, units, scale = _grid(step)
    exact = whole * units
    if units and -_EXACT < exact < _EXACT:
        return exact / scale
    return round(whole * step, decimals)


@cache
def _grid(step: float) -> tuple[int, int, float]:
    """(decimals, the step in units of 10**-decimals, 10**decimals); units 0 where
    the step is no whole number of such units, or has more decimals than a float's."""
    decimals = _decimals(step)
    if decimals > 15:
        return decimals, 0, 1.0
    scale = 10**decimals
    units = Decimal(repr(float(step))) * scale
    if units != units.to_integral_value():
        return decimals, 0, 1.0
    return decimals, int(units), float(scale)


#: |whole * units| below this: the float of `whole * step` is within far less than
#: half a unit of its decimal, so `round` would land on that decimal exactly
_EXACT = 2**50


@cache
def _decimals(step: float) -> int:
    exponent = Decimal(repr(float(step))).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 12
