"""The matching rules shared by every simulated venue (mock, paper-on-real-book, backtest).

One engine, three callers: the mock venue feeds it random-walk quotes, the
backtester feeds it candles, and the canary dry-run feeds it real order-book
snapshots. Keeping a single implementation is what makes a dev run, a backtest
and a paper run comparable. The engine does no I/O and keeps no clock of its
own; it is driven only by the market events it is given.

Rules (documented here because reports and tests depend on them):

* Latency: an order created at `created_ts` becomes live at `created_ts +
  latency_ms` and is first matched against the first market point at or after
  that time. Points of a quote or book snapshot are at the event's `ts`.
* Candles: the price path is open -> the extreme (high or low) nearer to the
  open -> the other extreme -> close; on a tie the high comes first. The four
  points get the times open_time, +1/3, +2/3 of the bar and the close `ts`; an
  order live at L acts first at the point whose slot [t_i, t_{i+1}) contains L
  (or at the open when L is before the bar). So an order sent at one bar's
  close with a small latency fills at the next bar's open. The synthetic book
  at a path point has its touch at price -/+ spread/2.
* Market orders walk the opposite side level by level (the average price
  worsens with size) and then pay `slippage_bps` more against the taker. If the
  book runs out, the remainder fills at the last (worst) level's price, plus
  slippage: a market order always fills completely once it has a price. With
  no level at all on that side (empty real book), it stays queued until one
  appears.
* Limit orders: when they become live, the part that is marketable takes
  liquidity as a taker at levels no worse than the limit (slippage applied, the
  price capped at the limit); the rest rests. A resting order is crossed at a
  later point when the market trades at or through its price: for a buy, last
  <= limit or best ask <= limit (candle: the path price <= limit); sells mirror
  it. Touching counts: a candle low exactly at a buy limit fills it.
* Each crossing fills a resting order with probability `fill_probability`
  (draw u, fill if u < p). A fill is complete with probability p again and
  otherwise partial: the second uniform v >= p is rescaled to a fraction
  f = (v - p) / (1 - p) of the remaining size (rounded down to the symbol's
  step size, at least one step). So p = 1 always fills completely and
  deterministically. Resting fills are maker fills at the limit price.
* Fees: fee = notional * bps / 1e4, maker or taker bps (a negative maker bps is
  a rebate, i.e. a negative fee).
* Reduce-only: before every fill the engine clips the order to the position it
  holds from its own fills (only the opposite-side part can be reduced); if
  nothing remains the order is canceled. Clipping lowers `order.size` to
  `filled + allowed`. The check happens when the order acts, not at submit,
  because earlier orders still in flight may change the position.
* Fills carry the event's `ts` (for a candle, its close), so the ledger sees
  non-decreasing times.
* Randomness: one numpy Generator seeded from the run seed on its own stream,
  separate from the price walk; draws happen in event order, orders in
  submission order, so the same seed and events give identical fills.

Speed: `on_market` runs for every event of a run. With no open order it returns
after one dict check; with open orders, per symbol the engine keeps queued
orders apart from resting ones sorted best price first, so an event that
reaches no limit and finds no queued order due is dismissed in O(1), and a
crossing visits only the crossed orders (then processed in submission order).

The engine owns the `Order` objects it was given and updates them in place
(exchange_id, status, filled, avg_price, size when reduce-only clips).
Prices and sizes are floats: this is a simulation, and the ledger converts
fills to exact arithmetic at its own boundary.
"""

import bisect
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from perps_bot.config.models import FeesConfig, MockConfig
from perps_bot.domain import (
    BookSnapshot,
    Candle,
    Fill,
    Liquidity,
    MarketEvent,
    Order,
    OrderStatus,
    OrderType,
    Quote,
    Side,
)
from perps_bot.domain.timeutil import parse_duration
from perps_bot.venues.base import OrderRejected, VenuePosition
from perps_bot.venues.book import Book, Level, SyntheticBook, touch_around

#: Quantities below this are treated as zero (sizes are >= 1e-8 on every venue we use).
EPS = 1e-12
_FILL_STREAM = zlib.crc32(b"perps-bot/matching/fills")


# --------------------------------------------------------------------------- pure rules


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
    levels: Sequence[Level], size: float, side: Side, limit: float, slippage_bps: float
) -> tuple[float, float]:
    """Taker part of a limit order: (quantity, average price) at levels within `limit`.

    The slippage-adjusted price is capped at the limit (a limit order never fills
    worse than its limit). Quantity 0.0 when nothing is marketable.
    """
    filled, notional = walk_book(levels, size, side, limit)
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


def fee_for(notional: float, bps: float) -> float:
    """Fee in quote currency (positive = cost) of a fill of `notional`."""
    return notional * bps / 1e4


# --------------------------------------------------------------------------- engine


@dataclass(frozen=True, slots=True)
class MatchingRules:
    """Everything the engine needs to know about the simulated market."""

    slippage_bps: float = 5.0
    fill_probability: float = 0.95
    latency_ms: int = 50
    maker_bps: float = 2.0
    taker_bps: float = 5.0
    book: SyntheticBook = field(default_factory=SyntheticBook)
    #: Quantity at the best synthetic level, per symbol (fallback `default_depth`).
    depth: Mapping[str, float] = field(default_factory=dict)
    default_depth: float = 1.0
    #: Lot size per symbol for partial fills (None: no rounding).
    step_size: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_config(cls, mock: MockConfig, fees: FeesConfig) -> "MatchingRules":
        """Rules of the mock exchange as the profile configures them.

        Symbols missing from `mock.symbols` get the generic RandomWalkConfig's depth/step.
        """
        names = list(mock.symbols)
        return cls(
            slippage_bps=mock.slippage_bps,
            fill_probability=mock.fill_probability,
            latency_ms=parse_duration(mock.latency),
            maker_bps=fees.maker_bps,
            taker_bps=fees.taker_bps,
            book=SyntheticBook(
                levels=mock.book_levels,
                spread_bps=mock.spread_bps,
                level_spacing_bps=mock.level_spacing_bps,
                depth_growth=mock.depth_growth,
            ),
            depth={name: mock.walk(name).book_depth for name in names},
            default_depth=mock.walk("").book_depth,
            step_size={name: mock.walk(name).step_size for name in names},
        )


@dataclass(slots=True)
class _Point:
    """One moment at which orders are matched: a quote, a snapshot or a candle path point."""

    cutoff: int  # an order acts here if it is live strictly before this time
    bid: float | None
    ask: float | None
    last: float | None
    book: Book | None = None  # real levels; None -> synthesize around bid/ask


@dataclass(slots=True, eq=False)  # identity equality: list.remove finds this very order
class _Working:
    order: Order
    live_ts: int
    seq: int  # submission order: ties and processing order within a point
    active: bool = False  # has reached the market (resting if still open)


def _buy_priority(item: _Working) -> tuple[float, int]:
    return -(item.order.price or 0.0), item.seq


def _sell_priority(item: _Working) -> tuple[float, int]:
    return item.order.price or 0.0, item.seq


class _SymbolOrders:
    """Open orders of one symbol: queued (waiting for latency or for a price) and resting
    limit orders sorted best price first, so an event that crosses nothing, with no
    queued order due, is dismissed in O(1) and a crossing only visits crossed orders."""

    __slots__ = ("buys", "next_live", "queued", "sells")

    def __init__(self) -> None:
        self.queued: list[_Working] = []
        self.buys: list[_Working] = []  # highest limit first
        self.sells: list[_Working] = []  # lowest limit first
        self.next_live: float = math.inf

    def __bool__(self) -> bool:
        return bool(self.queued or self.buys or self.sells)

    def queue(self, item: _Working) -> None:
        self.queued.append(item)
        self.next_live = min(self.next_live, item.live_ts)

    def unqueue(self, item: _Working) -> None:
        self.queued.remove(item)
        self.next_live = min((w.live_ts for w in self.queued), default=math.inf)

    def rest(self, item: _Working) -> None:
        if item.order.side is Side.BUY:
            bisect.insort(self.buys, item, key=_buy_priority)
        else:
            bisect.insort(self.sells, item, key=_sell_priority)

    def discard(self, item: _Working) -> None:
        if not item.active:
            self.unqueue(item)
            return
        resting = self.buys if item.order.side is Side.BUY else self.sells
        if item in resting:
            resting.remove(item)

    def may_act(self, ts: int, low: float, high: float) -> bool:
        """Whether an event at `ts` spanning [low, high] can touch any order."""
        return (
            ts >= self.next_live
            or (bool(self.buys) and low <= (self.buys[0].order.price or 0.0))
            or (bool(self.sells) and high >= (self.sells[0].order.price or math.inf))
        )

    def acting_at(self, point: "_Point") -> list[_Working]:
        """Orders that act at `point`, in submission order: queued ones now live, resting
        ones the point crosses."""
        acting = [w for w in self.queued if w.live_ts < point.cutoff]
        for item in self.buys:
            if not is_crossed(Side.BUY, item.order.price or 0.0, point.ask, point.last):
                break
            acting.append(item)
        for item in self.sells:
            if not is_crossed(Side.SELL, item.order.price or math.inf, point.bid, point.last):
                break
            acting.append(item)
        if len(acting) > 1:
            acting.sort(key=lambda w: w.seq)
        return acting


@dataclass(slots=True)
class _Position:
    size: float = 0.0
    entry: float = 0.0


def seed_sequence(seed: int, *stream: int) -> np.random.SeedSequence:
    """A SeedSequence from the run seed (any int, negatives folded to 64 bits) and a stream."""
    return np.random.SeedSequence([seed & 0xFFFF_FFFF_FFFF_FFFF, *stream])


class MatchingEngine:
    """Order state, positions and fill simulation for one simulated venue."""

    def __init__(self, rules: MatchingRules, seed: int, *, id_prefix: str = "sim") -> None:
        self.rules = rules
        self._rng = np.random.default_rng(seed_sequence(seed, _FILL_STREAM))
        self._id_prefix = id_prefix
        self._next_id = 1
        self._orders: dict[str, _Working] = {}
        self._by_symbol: dict[str, _SymbolOrders] = {}
        self._positions: dict[str, _Position] = {}
        self._seq = 0

    # ------------------------------------------------------------------ orders

    def submit(self, order: Order) -> Order:
        """Validate and queue `order`; it becomes live after the latency.

        Raises OrderRejected(None, ...) for a non-positive size, a limit order
        without a positive price, or a client id that is already open.
        """
        problem = self._validate(order)
        if problem is not None:
            order.status = OrderStatus.REJECTED
            raise OrderRejected(None, f"{order.client_id}: {problem}")
        order.exchange_id = f"{self._id_prefix}-{self._next_id}"
        self._next_id += 1
        order.status = OrderStatus.NEW
        self._seq += 1
        working = _Working(order, order.created_ts + self.rules.latency_ms, self._seq)
        self._orders[order.client_id] = working
        symbol_orders = self._by_symbol.get(order.symbol)
        if symbol_orders is None:
            symbol_orders = self._by_symbol[order.symbol] = _SymbolOrders()
        symbol_orders.queue(working)
        return order

    def _validate(self, order: Order) -> str | None:
        if not (math.isfinite(order.size) and order.size > 0):
            return f"size must be a positive number, got {order.size}"
        if order.order_type is OrderType.LIMIT and not (
            order.price is not None and math.isfinite(order.price) and order.price > 0
        ):
            return f"limit order needs a positive limit price, got {order.price}"
        if order.client_id in self._orders:
            return "duplicate client id"
        return None

    def cancel(self, client_id: str) -> Order | None:
        """Cancel an open order; returns it, or None if no such open order (idempotent)."""
        working = self._orders.get(client_id)
        if working is None:
            return None
        working.order.status = OrderStatus.CANCELED
        self._remove(working)
        return working.order

    def open_orders(self) -> list[Order]:
        """Queued and resting orders, in submission order."""
        return [w.order for w in self._orders.values()]

    def position(self, symbol: str) -> float:
        """Signed net position built from this engine's own fills."""
        held = self._positions.get(symbol)
        return held.size if held is not None else 0.0

    def positions(self) -> list[VenuePosition]:
        """Non-flat positions, by symbol name."""
        return [
            VenuePosition(symbol, held.size, held.entry)
            for symbol, held in sorted(self._positions.items())
            if held.size != 0.0
        ]

    # ------------------------------------------------------------------ market

    def on_market(self, event: MarketEvent) -> Sequence[Fill]:
        """Match due orders of `event.symbol` against the event; returns the fills."""
        if not self._orders:
            return ()
        symbol_orders = self._by_symbol.get(event.symbol)
        if symbol_orders is None:
            return ()
        if type(event) is Quote:  # the common case, inlined
            low = event.ask if event.ask < event.last else event.last
            high = event.bid if event.bid > event.last else event.last
        else:
            extremes = _extremes(event)
            if extremes is None:
                return ()  # FundingRate, MarkPrice: nothing trades
            low, high = extremes
        if not symbol_orders.may_act(event.ts, low, high):
            return ()
        fills: list[Fill] = []
        for point in self._points(event):
            for item in symbol_orders.acting_at(point):
                if self._orders.get(item.order.client_id) is not item:
                    continue  # closed earlier at this point
                if item.active:
                    self._match_resting(item, point, event.ts, fills)
                else:
                    self._activate(item, point, event.ts, fills)
        return fills

    def _points(self, event: MarketEvent) -> list[_Point]:
        if isinstance(event, Quote):
            return [_Point(event.ts + 1, event.bid, event.ask, event.last)]
        if isinstance(event, BookSnapshot):
            book = Book.from_snapshot(event)
            return [_Point(event.ts + 1, book.best_bid, book.best_ask, event.last, book)]
        if isinstance(event, Candle):
            return self._candle_points(event)
        return []  # FundingRate, MarkPrice: nothing trades

    def _candle_points(self, candle: Candle) -> list[_Point]:
        prices = candle_path(candle)
        span = max(candle.ts - candle.open_time, 0)
        starts = [candle.open_time + span * i // 3 for i in range(3)] + [candle.ts]
        cutoffs = [*starts[1:], candle.ts + 1]
        points = []
        for price, cutoff in zip(prices, cutoffs, strict=True):
            bid, ask = touch_around(price, self.rules.book.spread_bps)
            points.append(_Point(cutoff, bid, ask, price))
        return points

    def _levels(self, side: Side, point: _Point, symbol: str) -> Sequence[Level]:
        if point.book is not None:
            return point.book.liquidity_for(side)
        if point.bid is None or point.ask is None:
            return ()
        depth = self.rules.depth.get(symbol, self.rules.default_depth)
        return self.rules.book.side(side, point.bid, point.ask, depth)

    def _activate(self, item: _Working, point: _Point, ts: int, fills: list[Fill]) -> None:
        order = item.order
        if order.order_type is OrderType.MARKET:
            levels = self._levels(order.side, point, order.symbol)
            if not levels:
                return  # no price yet: stay queued
            quantity = self._allowed(item)
            if quantity <= EPS:
                return
            price = market_price(levels, quantity, order.side, self.rules.slippage_bps)
            assert price is not None
            self._fill(item, quantity, price, Liquidity.TAKER, ts, fills)
            return
        symbol_orders = self._by_symbol[order.symbol]  # kept while this order is open
        symbol_orders.unqueue(item)
        item.active = True
        limit = order.price
        assert limit is not None
        levels = self._levels(order.side, point, order.symbol)
        best = levels[0][0] if levels else None
        marketable = best is not None and (
            best <= limit if order.side is Side.BUY else best >= limit
        )
        if marketable:
            quantity = self._allowed(item)
            if quantity > EPS:
                taken, price = marketable_take(
                    levels, quantity, order.side, limit, self.rules.slippage_bps
                )
                if taken > EPS:
                    self._fill(item, taken, price, Liquidity.TAKER, ts, fills)
        if self._orders.get(order.client_id) is item:
            symbol_orders.rest(item)  # the rest rests

    def _match_resting(self, item: _Working, point: _Point, ts: int, fills: list[Fill]) -> None:
        order = item.order
        limit = order.price
        assert limit is not None
        opposite = point.ask if order.side is Side.BUY else point.bid
        if not is_crossed(order.side, limit, opposite, point.last):
            return
        remaining = self._allowed(item)
        if remaining <= EPS:
            return
        p = self.rules.fill_probability
        u = float(self._rng.random())
        if u >= p:
            return
        v = float(self._rng.random())
        step = self.rules.step_size.get(order.symbol)
        quantity = resting_fill_quantity(remaining, p, u, v, step)
        if quantity > EPS:
            self._fill(item, quantity, limit, Liquidity.MAKER, ts, fills)

    def _allowed(self, item: _Working) -> float:
        """Remaining quantity after reduce-only clipping; cancels the order at zero."""
        order = item.order
        if not order.reduce_only:
            return order.remaining
        reducible = max(0.0, -order.side.sign * self.position(order.symbol))
        if reducible <= EPS:
            order.status = OrderStatus.CANCELED
            self._remove(item)
            return 0.0
        if reducible < order.remaining:
            order.size = order.filled + reducible
        return order.remaining

    def _fill(
        self,
        item: _Working,
        quantity: float,
        price: float,
        liquidity: Liquidity,
        ts: int,
        fills: list[Fill],
    ) -> None:
        order = item.order
        bps = self.rules.maker_bps if liquidity is Liquidity.MAKER else self.rules.taker_bps
        fills.append(
            Fill(
                ts=ts,
                symbol=order.symbol,
                side=order.side,
                size=quantity,
                price=price,
                fee=fee_for(quantity * price, bps),
                liquidity=liquidity,
                client_id=order.client_id,
                correlation_id=order.correlation_id,
                reason=order.reason,
                stop_price=order.stop_price,
            )
        )
        total = order.filled + quantity
        order.avg_price = (order.avg_price * order.filled + price * quantity) / total
        order.filled = total
        self._apply_position(order.symbol, order.side.sign * quantity, price)
        if order.size - order.filled <= EPS:
            order.filled = order.size
            order.status = OrderStatus.FILLED
            self._remove(item)
        else:
            order.status = OrderStatus.PARTIALLY_FILLED

    def _apply_position(self, symbol: str, delta: float, price: float) -> None:
        held = self._positions.setdefault(symbol, _Position())
        new_size = held.size + delta
        if abs(new_size) <= EPS:
            held.size, held.entry = 0.0, 0.0
            return
        if held.size == 0.0 or held.size * delta > 0:
            held.entry = (held.entry * abs(held.size) + price * abs(delta)) / abs(new_size)
        elif held.size * new_size < 0:
            held.entry = price  # flipped through zero: the new side opened at this fill
        held.size = new_size

    def _remove(self, item: _Working) -> None:
        self._orders.pop(item.order.client_id, None)
        symbol_orders = self._by_symbol.get(item.order.symbol)
        if symbol_orders is not None:
            symbol_orders.discard(item)
            if not symbol_orders:
                del self._by_symbol[item.order.symbol]


def _extremes(event: MarketEvent) -> tuple[float, float] | None:
    """(lowest, highest) price at which the event could cross a resting buy / sell."""
    if isinstance(event, Quote):
        return min(event.ask, event.last), max(event.bid, event.last)
    if isinstance(event, Candle):
        return event.low, event.high
    if isinstance(event, BookSnapshot):
        lows = [p for p in (event.asks[0][0] if event.asks else None, event.last) if p is not None]
        highs = [p for p in (event.bids[0][0] if event.bids else None, event.last) if p is not None]
        return min(lows, default=math.inf), max(highs, default=-math.inf)
    return None


def candle_path(candle: Candle) -> tuple[float, float, float, float]:
    """The documented intra-bar path: open, nearer extreme, other extreme, close.

    On a tie (open equidistant from high and low) the high comes first.
    """
    o, h, low = candle.open, candle.high, candle.low
    if h - o <= o - low:
        return o, h, low, candle.close
    return o, low, h, candle.close
