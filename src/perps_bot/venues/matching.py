"""The matching rules shared by every simulated venue (mock, paper-on-real-book, backtest).

One engine, three callers: the mock venue feeds it random-walk quotes, the
backtester feeds it candles, and the canary dry-run feeds it real order-book
snapshots. Keeping a single implementation is what makes a dev run, a backtest
and a paper run comparable. The engine does no I/O and keeps no clock of its
own; it is driven only by the market events it is given.

Rules (documented here because reports and tests depend on them):

* Latency: an order created at `created_ts` becomes live at `created_ts +
  latency_ms` and is first matched against the first market point at or after
  that time. Points of a quote or book snapshot are at the event's `ts`. A cancel
  takes effect at once (README "Fill models": the venue contract).
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
  price capped at the limit), in whole lots of the symbol's step; the rest rests.
  A resting order is crossed at a later point when the market trades at or
  through its price: for a buy, last <= limit or best ask <= limit (candle: the
  path price <= limit); sells mirror it. Touching counts: a candle low exactly at
  a buy limit fills it. On a real book (a dry run, a replay of its capture) the
  trade is one of the public trades the book carries (printed since the symbol's
  previous book, when the order was already resting), not the book's `last`: the
  market's latest trade, however old, maybe from before the order existed
  (MatchPoint.through). Quotes and candles keep their last price.
* Each crossing fills a resting order with probability `fill_probability`
  (draw u, fill if u < p). A fill is complete with probability p again and
  otherwise partial: the second uniform v >= p is rescaled to a fraction
  f = (v - p) / (1 - p) of the remaining size (rounded down to the symbol's
  step size, at least one step). So p = 1 always fills completely and
  deterministically. Resting fills are maker fills at the limit price.
* Fees: fee = notional * bps / 1e4, the instrument's maker or taker bps (a
  negative maker bps is a rebate, i.e. a negative fee).
* Lifecycle: every change of an order goes through domain.lifecycle and is queued
  as an OrderUpdate in `updates` (accepted at submit, partially filled / filled,
  canceled with a reason); the venue's owner drains the list.
* Reduce-only: before every fill the engine clips the order to the position the
  ledger holds (plus the fills this same event produced and the ledger has not
  booked yet); only the opposite-side part can be reduced, and if nothing remains
  the order is canceled with that reason. Clipping lowers `order.size` to
  `filled + allowed`. The check happens when the order acts, not at submit,
  because earlier orders still in flight may change the position. The engine keeps
  no position of its own: the ledger is the one position book (SPEC 8), so a
  liquidation the ledger booked is seen at once.
* Stop and take-profit orders wait for their trigger (venues.triggers). Those sent
  after a candle part's fills (an entry's protection) meet the rest of the move to
  that part's point, from its fills' price on (`on_leg_rest`).
* Fills carry the event's `ts` (for a candle, its close), so the ledger sees
  non-decreasing times; a candle a funding settlement splits is matched in parts
  (`on_candle_part`), whose fills carry their path point's time (a candle walked
  point by point for its mark's extremes: its close time, as when matched whole).
* Randomness: one numpy Generator seeded from the run seed on its own stream,
  separate from the price walk; draws happen in event order, orders in
  submission order (empirical latency: in the order they became live, then
  submission order), so the same seed and events give identical fills.

Speed: `on_market` runs for every event of a run. With no open order it returns
after one dict check; with open orders, per symbol the engine keeps queued
orders apart from resting ones sorted best price first, so an event that
reaches no limit and finds no queued order due is dismissed in O(1), and a
crossing visits only the crossed orders (then processed in submission order).

The engine owns the `Order` objects it was given and updates them in place
(exchange_id, status, filled, avg_price, size when reduce-only clips). Sizes reach it
already rounded to the instrument's step (domain.instrument), as on every venue.
Prices and sizes are floats: this is a simulation, and the ledger converts
fills to exact arithmetic at its own boundary.
"""

import zlib
from collections.abc import Callable, Sequence

import numpy as np

from perps_bot.domain import (
    Candle,
    Fill,
    Liquidity,
    MarketEvent,
    MarkPrice,
    OrderUpdate,
    PositionBook,
    Quote,
    Side,
    fill_of,
    record_fill,
)
from perps_bot.domain.enums import BUY, CANCELED, FILLED, LIMIT, MAKER, TAKER
from perps_bot.venues.book import Level
from perps_bot.venues.engine_orders import EngineOrders
from perps_bot.venues.fill_rules import (
    EPS,
    extremes,
    fee_for,
    is_crossed,
    market_price,
    marketable_take,
    on_step,
    resting_fill_quantity,
)
from perps_bot.venues.match_rules import MatchingRules, seed_sequence
from perps_bot.venues.order_queue import MatchPoint, SymbolOrders, WorkingOrder, match_points
from perps_bot.venues.triggers import is_triggered, leg_rest, triggered_point

_FILL_STREAM = zlib.crc32(b"perps-bot/matching/fills")

__all__ = ["MatchingEngine", "MatchingRules", "seed_sequence"]


class MatchingEngine(EngineOrders):
    """Order state (its base, venues.engine_orders) and fill simulation for one
    simulated venue; positions come from `books`: the ledger of the portfolio an order
    belongs to (SPEC 8, 10)."""

    def __init__(
        self,
        rules: MatchingRules,
        seed: int,
        books: Callable[[str], PositionBook],
        *,
        id_prefix: str = "sim",
    ) -> None:
        self.rules = rules
        self._books = books
        self._rng = np.random.default_rng(seed_sequence(seed, _FILL_STREAM))
        self._id_prefix = id_prefix
        self._next_id = 1
        self._orders: dict[str, WorkingOrder] = {}
        self._by_symbol: dict[str, SymbolOrders] = {}
        self._seq = 0
        self._by_arrival = bool(rules.latency_samples)
        #: fills of the current on_market call, not yet booked by the ledger: signed qty
        self._unbooked: dict[tuple[str, str], float] = {}  # (portfolio, symbol) -> qty
        #: the last `on_candle_part`: the submission count then and its fills
        self._leg: tuple[int, Sequence[Fill]] = (0, ())
        #: Order lifecycle changes not yet drained by the venue's owner.
        self.updates: list[OrderUpdate] = []

    # ------------------------------------------------------------------ market

    def quiet(self, symbol: str) -> bool:
        """No order of `symbol` is queued or resting: on_market would return nothing."""
        return symbol not in self._by_symbol

    def on_candle_part(
        self, candle: Candle, since: int, until: int, stamp: int | None
    ) -> Sequence[Fill]:
        """The points of `candle`'s path whose time is in [since, until), fills stamped
        at their point's time or at `stamp` (Venue.on_candle_part)."""
        fills = self.on_market(candle, (since, until, stamp))
        self._leg = (self._seq, fills)
        return fills

    def on_leg_rest(
        self, candle: Candle, since: int, until: int, stamp: int | None
    ) -> Sequence[Fill]:
        """The trigger orders submitted since the last `on_candle_part` (same window),
        matched against the rest of the move to its point, after that call's fills: a
        stop an entry filled on the way asked for, passed on the same leg (Venue)."""
        seq, before = self._leg
        self._leg = (self._seq, ())
        symbol_orders = self._by_symbol.get(candle.symbol)
        if not before or symbol_orders is None:
            return ()
        rules = self.rules
        points = match_points(candle, rules.candle_path == "adaptive", rules.book.spread_bps)
        point = next((p for p in points if since <= p.since < until), None)
        if point is None or not point.continuous or point.last is None:
            return ()
        end = point.last
        # where the move was at a fill: a resting order's price, passed on the way; a
        # taker fill's market is the point's own. A protective order's move starts at
        # its entry's fill (its correlation id); else at the last fill on the way
        at = {f.client_id: f.price if f.liquidity is MAKER else end for f in before}
        last = min(at.values(), key=lambda price: abs(price - end))
        fills: list[Fill] = []
        self._unbooked.clear()
        ts = point.since if stamp is None else stamp
        new = [w for w in symbol_orders.queued if w.seq > seq and w.live_ts < point.cutoff]
        for item in new:
            order = item.order
            if order.order_type.is_trigger and self._orders.get(order.client_id) is item:
                start = at.get(order.correlation_id, last)
                self._activate(item, leg_rest(order, point, item.live_ts, start), ts, fills)
        self._leg = (self._seq, fills)
        return fills

    def on_market(
        self, event: MarketEvent, window: tuple[int, int, int | None] | None = None
    ) -> Sequence[Fill]:
        """Match due orders of `event.symbol` against the event; returns the fills.
        `window`: only the points whose time is in [since, until), fills stamped at
        `stamp`, else at their point's time (on_candle_part)."""
        if not self._orders:
            return ()
        symbol_orders = self._by_symbol.get(event.symbol)
        if symbol_orders is None:
            return ()
        if type(event) is Quote:  # the common case, inlined
            low = event.ask if event.ask < event.last else event.last
            high = event.bid if event.bid > event.last else event.last
        else:
            span = extremes(event)
            if span is None:
                if type(event) is MarkPrice:
                    self._fire_triggers(symbol_orders, event)
                return ()  # FundingRate, MarkPrice: nothing trades
            low, high = span
        if not symbol_orders.may_act(event.ts, low, high):
            return ()
        fills: list[Fill] = []
        self._unbooked.clear()
        rules = self.rules
        ts = event.ts
        for point in match_points(event, rules.candle_path == "adaptive", rules.book.spread_bps):
            if window is not None:  # a part of a candle: its points' own times
                if not window[0] <= point.since < window[1]:
                    continue
                ts = point.since if window[2] is None else window[2]
            for item in symbol_orders.acting_at(point, self._by_arrival):
                if self._orders.get(item.order.client_id) is not item:
                    continue  # closed earlier at this point
                if item.active:
                    self._match_resting(item, point, ts, fills)
                else:
                    self._activate(item, point, ts, fills)
            if not symbol_orders:
                break  # nothing left to act at a later point (a market order filled)
        return fills

    def _fire_triggers(self, symbol_orders: SymbolOrders, event: MarkPrice) -> None:
        """A mark update fires the live trigger orders whose trigger it reached (as on
        the exchange, which triggers on the mark); they fill at the next point."""
        for item in symbol_orders.queued:
            order = item.order
            if order.order_type.is_trigger and item.live_ts <= event.ts:
                item.fired = item.fired or is_triggered(order, event.mark)

    def _levels(self, side: Side, point: MatchPoint, symbol: str) -> Sequence[Level]:
        if point.book is not None:
            return point.book.liquidity_for(side)
        if point.bid is None or point.ask is None:
            return ()
        depth = self.rules.depth.get(symbol, self.rules.default_depth)
        return self.rules.book.side(side, point.bid, point.ask, depth)

    def _activate(self, item: WorkingOrder, point: MatchPoint, ts: int, fills: list[Fill]) -> None:
        order = item.order
        if order.order_type.is_trigger and not item.fired:  # venues.triggers
            at = triggered_point(order, point, self.rules.book.spread_bps, item.live_ts)
            if at is None:
                return
            point = at
        if order.order_type is not LIMIT:
            levels = self._levels(order.side, point, order.symbol)
            if not levels:
                return  # no price yet: stay queued
            quantity = self._allowed(item, ts)
            if quantity <= EPS:
                return
            price = market_price(levels, quantity, order.side, self.rules.slippage_bps)
            assert price is not None
            self._fill(item, quantity, price, TAKER, ts, fills)
            return
        symbol_orders = self._by_symbol[order.symbol]  # kept while this order is open
        symbol_orders.unqueue(item)
        item.active = True
        limit = order.price
        assert limit is not None
        levels = self._levels(order.side, point, order.symbol)
        best = levels[0][0] if levels else None
        marketable = best is not None and (best <= limit if order.side is BUY else best >= limit)
        if marketable:
            quantity = self._allowed(item, ts)
            if quantity > EPS:
                step = self.rules.step_size.get(order.symbol)
                taken, price = marketable_take(
                    levels, quantity, order.side, limit, self.rules.slippage_bps, step
                )
                if taken > EPS:
                    self._fill(item, taken, price, TAKER, ts, fills)
        if self._orders.get(order.client_id) is item:
            symbol_orders.rest(item)  # the rest rests

    def _match_resting(
        self, item: WorkingOrder, point: MatchPoint, ts: int, fills: list[Fill]
    ) -> None:
        order = item.order
        limit = order.price
        assert limit is not None
        opposite = point.ask if order.side is BUY else point.bid
        if not is_crossed(order.side, limit, opposite, point.through(order.side)):
            return
        remaining = self._allowed(item, ts)
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
            self._fill(item, quantity, limit, MAKER, ts, fills)

    def _allowed(self, item: WorkingOrder, ts: int) -> float:
        """Remaining quantity after reduce-only clipping; cancels the order at zero."""
        order = item.order
        if not order.reduce_only:
            return order.remaining
        key = (order.portfolio, order.symbol)
        held = self._books(order.portfolio).position_size(order.symbol) + self._unbooked.get(
            key, 0.0
        )
        reducible = max(0.0, -order.side.sign * held)
        if reducible <= EPS:
            self._close(item, CANCELED, ts, "reduce-only: no position left to reduce")
            return 0.0
        if reducible < order.remaining:
            order.size = on_step(order.filled + reducible, self.rules.step_size.get(order.symbol))
        return order.remaining

    def _fill(
        self,
        item: WorkingOrder,
        quantity: float,
        price: float,
        liquidity: Liquidity,
        ts: int,
        fills: list[Fill],
    ) -> None:
        order = item.order
        # a remainder (size - filled) or a sum over levels is a float a hair off the lot
        # grid: the fill is the whole steps the venue would trade
        quantity = on_step(quantity, self.rules.step_size.get(order.symbol))
        maker, taker = self.rules.fees.get(
            order.symbol, (self.rules.maker_bps, self.rules.taker_bps)
        )
        fee = fee_for(quantity * price, maker if liquidity is MAKER else taker)
        fills.append(fill_of(order, ts, quantity, price, fee, liquidity))
        symbol = order.symbol
        key = (order.portfolio, symbol)
        self._unbooked[key] = self._unbooked.get(key, 0.0) + order.side.sign * quantity
        self.updates.append(record_fill(order, quantity, price, ts))
        if order.status is FILLED:
            self._remove(item)
