"""Fill models of the paper venue beyond today's `touch` rule (SPEC 14; README "Fill
models" gives every formula).

`build_engine` hands out the plain `MatchingEngine` for the default rules (touch,
constant latency, nearest-first candle path), so every existing run keeps its fills
byte for byte and its speed; any other choice gets `ModelMatchingEngine`, which
overrides only the decisions the models change:

* `penetration`: a resting order fills (completely, at its limit, as a maker) only
  once the market trades `penetration_ticks` ticks through it: for a buy, best ask
  or last <= limit - k * tick (on a real book: a public trade since the order
  rested, not the book's `last`, as under `touch`). The random fill draw of `touch`
  does not apply.
* `queue`: an order that starts resting on a real book joins the queue at its
  price behind the displayed quantity (beyond the displayed depth: behind what
  its level shows when it first comes into view); public trades at its price and
  the level's decreases move it forward (venues.queue_math); the overshoot past
  the front fills it, partially if need be. The price trading through it (best
  ask <= a buy's limit, or a public trade below it since it joined; not the book's
  `last`, which may be older than the order) fills the rest. Without a book
  (quotes, candles) an order fills as under `touch`.
* For both: taker orders consume the displayed levels, and what they took is
  remembered until the symbol's next book, so two orders in one snapshot do not
  both take the same liquidity.
* `latency_samples` (empirical latency): each order's latency is drawn from them
  on its own seeded stream; otherwise the constant `latency_ms`.
"""

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from perps_bot.domain import (
    BookSnapshot,
    Candle,
    Fill,
    Liquidity,
    MarketEvent,
    Order,
    PositionBook,
    Quote,
    Side,
)
from perps_bot.domain.instrument import grid_point
from perps_bot.venues.book import Level
from perps_bot.venues.fill_rules import EPS, is_crossed
from perps_bot.venues.match_rules import MatchingRules, seed_sequence
from perps_bot.venues.matching import MatchingEngine
from perps_bot.venues.order_queue import MatchPoint, WorkingOrder
from perps_bot.venues.queue_math import (
    UNSEEN,
    QueueFunction,
    QueueSlot,
    after_depth_change,
    after_trade,
    executable,
)

_LATENCY_STREAM = zlib.crc32(b"perps-bot/matching/latency")


def build_engine(
    rules: MatchingRules,
    seed: int,
    books: Callable[[str], PositionBook],
    *,
    id_prefix: str = "sim",
) -> MatchingEngine:
    """The engine for `rules`: the plain one unless a non-default model is asked for;
    `books` gives the ledger of a portfolio by id."""
    if rules.is_default:
        return MatchingEngine(rules, seed, books, id_prefix=id_prefix)
    return ModelMatchingEngine(rules, seed, books, id_prefix=id_prefix)


def level_qty(levels: Sequence[Level], price: float, tick: float, side: Side) -> float | None:
    """Quantity displayed at `price` on the book side a resting order on `side` joins
    (bids for a buy, best first): 0.0 inside the displayed range (or better than its
    best) but absent, None when `price` lies beyond the deepest displayed level, where
    the book says nothing (a one-level book shows nothing below its level)."""
    half = tick / 2.0
    for level_price, quantity in levels:
        if abs(level_price - price) <= half:
            return quantity
    if not levels:
        return None
    deepest = levels[-1][0]
    beyond = price < deepest - half if side is Side.BUY else price > deepest + half
    return None if beyond else 0.0


def penetration_price(limit: float, side: Side, ticks: int, tick: float) -> float:
    """The price `ticks` ticks through `limit` against a resting order on `side` (below a
    buy, above a sell), on the tick grid: limit - k * tick in floats is often a hair
    past the k-th tick (7541.15 - 0.01 is 7541.139999999999), and a market exactly k
    ticks through must fill the order."""
    price = limit - side.sign * ticks * tick
    point = grid_point(price, tick) if tick > 0 else None
    return price if point is None else point


class ModelMatchingEngine(MatchingEngine):
    """MatchingEngine with the penetration / queue models, depth memory and empirical
    latency (module docstring)."""

    def __init__(
        self,
        rules: MatchingRules,
        seed: int,
        books: Callable[[str], PositionBook],
        *,
        id_prefix: str = "sim",
    ) -> None:
        super().__init__(rules, seed, books, id_prefix=id_prefix)
        self._model = rules.fill_model
        self._queue_func = QueueFunction.parse(rules.queue_model)
        self._latency_rng = np.random.default_rng(seed_sequence(seed, _LATENCY_STREAM))
        self._slots: dict[str, QueueSlot] = {}
        #: (symbol, taker side) -> {price: quantity taken since the symbol's last book}
        self._consumed: dict[tuple[str, Side], dict[float, float]] = {}
        self._taking: tuple[str, Side, Sequence[Level]] | None = None

    # -- latency ---------------------------------------------------------------------
    def _live_ts(self, order: Order) -> int:
        samples = self.rules.latency_samples
        if not samples:
            return super()._live_ts(order)
        return order.created_ts + int(samples[int(self._latency_rng.integers(len(samples)))])

    # -- market ----------------------------------------------------------------------
    def quiet(self, symbol: str) -> bool:
        """Also nothing consumed from the symbol's book waiting to be forgotten."""
        consumed = self._consumed
        return super().quiet(symbol) and not (
            (symbol, Side.BUY) in consumed or (symbol, Side.SELL) in consumed
        )

    def on_market(
        self, event: MarketEvent, window: tuple[int, int, int | None] | None = None
    ) -> Sequence[Fill]:
        if type(event) in (BookSnapshot, Quote, Candle) and self._consumed:
            for side in (Side.BUY, Side.SELL):
                self._consumed.pop((event.symbol, side), None)
        self._unbooked.clear()
        fills = list(super().on_market(event, window))
        if self._slots and type(event) is BookSnapshot:
            self._queue_step(event, fills)
        return fills

    def _tick(self, symbol: str) -> float:
        return self.rules.tick_size.get(symbol, 0.0)

    def _levels(self, side: Side, point: MatchPoint, symbol: str) -> Sequence[Level]:
        levels = super()._levels(side, point, symbol)
        used = self._consumed.get((symbol, side))
        if used:
            levels = [(p, q - used.get(p, 0.0)) for p, q in levels if q - used.get(p, 0.0) > EPS]
        self._taking = (symbol, side, levels)
        return levels

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
        taking = self._taking
        if liquidity is Liquidity.TAKER and taking is not None:
            symbol, side, levels = taking
            if (symbol, side) == (order.symbol, order.side):
                self._remember_taken(symbol, side, levels, quantity)
        super()._fill(item, quantity, price, liquidity, ts, fills)

    def _remember_taken(
        self, symbol: str, side: Side, levels: Sequence[Level], quantity: float
    ) -> None:
        used = self._consumed.setdefault((symbol, side), {})
        left = quantity
        for price, available in levels:
            take = min(available, left)
            if take > EPS:
                used[price] = used.get(price, 0.0) + take
                left -= take
            if left <= EPS:
                break

    def _activate(self, item: WorkingOrder, point: MatchPoint, ts: int, fills: list[Fill]) -> None:
        super()._activate(item, point, ts, fills)
        order = item.order
        if (
            self._model == "queue"
            and point.book is not None
            and item.active
            and self._orders.get(order.client_id) is item
            and order.price is not None
        ):
            side_levels = point.book.bids if order.side is Side.BUY else point.book.asks
            shown = level_qty(side_levels, order.price, self._tick(order.symbol), order.side)
            # beyond the displayed depth: its place is taken when its level shows
            front = UNSEEN if shown is None else shown
            self._slots[order.client_id] = QueueSlot(front, shown or 0.0, ts)

    def _match_resting(
        self, item: WorkingOrder, point: MatchPoint, ts: int, fills: list[Fill]
    ) -> None:
        order = item.order
        limit = order.price
        assert limit is not None
        if self._model == "touch" or (
            self._model == "queue" and order.client_id not in self._slots
        ):
            super()._match_resting(item, point, ts, fills)
            return
        buy = order.side is Side.BUY
        opposite = point.ask if buy else point.bid
        if self._model == "penetration":
            trigger = penetration_price(
                limit, order.side, self.rules.penetration_ticks, self._tick(order.symbol)
            )
            crossed = is_crossed(order.side, trigger, opposite, point.through(order.side))
        else:  # queue: the other side reaching the level fills it without the queue; a
            # trade through it is one of the book's public trades (_queue_step), not the
            # book's `last`, which may be a trade from before the order existed
            crossed = opposite is not None and (opposite <= limit if buy else opposite >= limit)
        if crossed:
            remaining = self._allowed(item, ts)
            if remaining > EPS:
                self._fill(item, remaining, limit, Liquidity.MAKER, ts, fills)

    # -- the queue -------------------------------------------------------------------
    def _queue_step(self, book: BookSnapshot, fills: list[Fill]) -> None:
        """Advance every queued order of the book's symbol on its trades and levels."""
        for client_id, slot in list(self._slots.items()):
            item = self._orders.get(client_id)
            if item is None:
                del self._slots[client_id]
                continue
            order = item.order
            if order.symbol != book.symbol or slot.joined_ts >= book.ts:
                continue
            limit = order.price
            assert limit is not None
            tick = self._tick(order.symbol)
            for trade in book.trades:
                if trade.taker is order.side:
                    continue  # an aggressor on our side never trades against our level
                if abs(trade.price - limit) <= tick / 2.0:
                    slot.front = after_trade(slot.front, trade.qty)
                    slot.traded += trade.qty
                elif (trade.price < limit) if order.side is Side.BUY else (trade.price > limit):
                    slot.front = -order.remaining  # traded through: all of it executed
            levels = book.bids if order.side is Side.BUY else book.asks
            shown = level_qty(levels, limit, tick, order.side)
            if shown is not None:
                slot.front = after_depth_change(
                    self._queue_func, slot.front, slot.level_qty, shown, slot.traded
                )
                slot.level_qty, slot.traded = shown, 0.0
            self._queue_fill(item, slot, book.ts, fills)

    def _queue_fill(self, item: WorkingOrder, slot: QueueSlot, ts: int, fills: list[Fill]) -> None:
        if slot.front >= 0.0:
            return
        remaining = self._allowed(item, ts)
        quantity = executable(slot.front, remaining, self.rules.step_size.get(item.order.symbol))
        if quantity > EPS:
            slot.front += quantity
            assert item.order.price is not None
            self._fill(item, quantity, item.order.price, Liquidity.MAKER, ts, fills)

    # -- checkpoints -----------------------------------------------------------------
    def state(self) -> tuple[object, ...]:
        return (super().state(), self._latency_rng.bit_generator.state, dict(self._slots))

    def restore_state(self, state: Any) -> None:
        base, latency_rng, slots = state
        super().restore_state(base)
        self._latency_rng.bit_generator.state = latency_rng
        self._slots = dict(slots)
        self._consumed = {}
