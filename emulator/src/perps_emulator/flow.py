"""Other participants: a market whose microstructure a paper model does not know in advance
(on with ``EmulatorServer(microstructure=True)``; off, the book stays the pure function
of the price that markets.py describes and every earlier test keeps its answers).

What it adds, per symbol, after every price step (all drawn from one numpy Generator
seeded with crc32(f"{seed}:{symbol}:flow"), so the same seed and calls give the same
market):

- **Levels that live.** Each displayed price keeps its own quantity (``LevelBook``):
  a price new to the book opens at the symbol's depth times a random factor; then
  adds (a random share of the base size) and cancels (a random share of what rests)
  change the top levels, and trades deplete them. An emptied level is not shown.
- **Other participants' trades.** A Poisson number of market orders per step, each
  a random share of the base size, hit the best bid or ask. They are published on
  ``/fapi/v1/trades``, ``/fapi/v1/aggTrades`` and the ``@trade`` / ``@aggTrade``
  websocket streams (our own executions are published there too, as on an exchange).
- **Queue priority.** A resting order of ours at a displayed price waits behind the
  quantity that was there when it arrived (``ahead``). A trade at that price takes
  ``ahead`` first, then our order (a partial fill when the trade is smaller than what
  is left), then the rest of the level. A cancel at that price comes out of ``ahead``
  with probability ahead / level (the cancelling order sits anywhere in the queue).
  The price moving through the order (best ask at or below a buy) fills the rest,
  as before (engine.match_resting).
- **The last price is the last trade's** (the ticker's `lastPrice`, api_market.py),
  as on an exchange; the price process still places the book.
"""

import functools
import math
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from perps_emulator.markets import PriceProcess

#: Public trades kept per symbol (the REST endpoints serve the latest 1000 at most).
TRADES_KEPT = 2_000
TOP_LEVELS = 5  # levels per side that see adds and cancels


@dataclass(frozen=True, slots=True)
class PublicTrade:
    trade_id: int
    price: float
    qty: float
    time: int
    buyer_maker: bool  # True: the seller was the aggressor (hit the bid)


@dataclass(slots=True)
class FlowParams:
    """How busy the other participants are, per price step."""

    trades_per_step: float = 1.5
    trade_size: float = 0.35  # mean share of the base level size per trade
    adds_per_step: float = 2.0
    cancels_per_step: float = 2.0


@dataclass(slots=True)
class LevelBook:
    """Displayed quantity per price (rounded to the tick) of one symbol."""

    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)

    def side(self, bid: bool) -> dict[float, float]:
        return self.bids if bid else self.asks


@functools.lru_cache(maxsize=1 << 16)  # a book is read at every publish: hash once per price
def fresh_qty(symbol: str, bid: bool, price: float, base: float) -> float:
    """What a price nobody touched yet shows: the base size times a factor in [0.5, 1.5)
    that depends on the price alone (not on how often the book was read)."""
    key = zlib.crc32(f"{symbol}:{int(bid)}:{price!r}".encode())
    return base * (0.5 + key / 2**32)


#: fill(order_id, qty, price) -> quantity executed: the engine books our order's execution
FillOrder = Callable[[int, float, float], float]


class Microstructure:
    """The other participants of every symbol (module docstring)."""

    def __init__(
        self,
        markets: dict[str, PriceProcess],
        seed: int,
        params: FlowParams | None = None,
        *,
        active: bool = True,
    ) -> None:
        """`active=False`: no other participants (the book stays markets.py's function of
        the price); only our own executions are published as trades."""
        self.markets = markets
        self.params = params or FlowParams()
        self.active = active
        self.books = {s: LevelBook() for s in markets}
        self.trades: dict[str, deque[PublicTrade]] = {s: deque(maxlen=TRADES_KEPT) for s in markets}
        self._rng = {
            s: np.random.default_rng(zlib.crc32(f"{seed}:{s}:flow".encode())) for s in markets
        }
        self._next_trade_id = 700_000_001
        #: our resting orders: order id -> quantity ahead of it at its price
        self.ahead: dict[int, float] = {}
        if active:
            for symbol, market in markets.items():
                market.depth_of = self._depth_lookup(symbol)

    def _depth_lookup(self, symbol: str) -> Callable[[bool, float, float], float]:
        book = self.books[symbol]

        def lookup(bid: bool, price: float, default: float) -> float:
            qty = book.side(bid).get(price)
            return qty if qty is not None else fresh_qty(symbol, bid, price, default)

        return lookup

    # -- what happens each step ----------------------------------------------------------
    def step(
        self, symbol: str, now: int, fill: FillOrder, resting: list[tuple[int, bool, float]]
    ) -> None:
        """Adds, cancels and trades of others on `symbol`; `resting` lists our open limit
        orders there as (order id, is buy, price) in time priority."""
        if not self.active:
            return
        market, rng, p = self.markets[symbol], self._rng[symbol], self.params
        base = market.spec.level_qty
        for _ in range(int(rng.poisson(p.adds_per_step))):
            bid, price = self._random_level(market, rng)
            added = base * float(rng.uniform(0.05, 0.5))
            self._set(symbol, bid, price, self._qty(symbol, bid, price) + added)
        for _ in range(int(rng.poisson(p.cancels_per_step))):
            bid, price = self._random_level(market, rng)
            self._cancel(symbol, bid, price, float(rng.uniform(0.05, 0.6)), resting, rng)
        for _ in range(int(rng.poisson(p.trades_per_step))):
            hit_bid = bool(rng.random() < 0.5)
            size = market.spec.round_qty(base * float(rng.exponential(p.trade_size)))
            if size > 0:
                self._trade(symbol, hit_bid, size, now, fill, resting)
        self._prune(symbol, market)
        market.touch(now)

    def join(self, order_id: int, symbol: str, bid: bool, price: float) -> None:
        """Our order starts resting: it queues behind what is displayed at its price."""
        if not self.active:
            return
        self.ahead[order_id] = self._qty(symbol, bid, price)

    def record(self, symbol: str, price: float, qty: float, now: int, buyer_maker: bool) -> None:
        """Publish a trade (ours or another participant's)."""
        self.trades[symbol].append(PublicTrade(self._next_trade_id, price, qty, now, buyer_maker))
        self._next_trade_id += 1

    def consume(self, symbol: str, bid: bool, price: float, qty: float) -> None:
        """Our taker order took `qty` at `price` off the book."""
        if not self.active:
            return
        self._set(symbol, bid, price, self._qty(symbol, bid, price) - qty)

    # -- internals -----------------------------------------------------------------------
    def _random_level(self, market: PriceProcess, rng: np.random.Generator) -> tuple[bool, float]:
        bid = bool(rng.random() < 0.5)
        index = int(rng.integers(TOP_LEVELS))
        best = market.best_bid if bid else market.best_ask
        gap = market.spread
        return bid, market.spec.round_price(best - index * gap if bid else best + index * gap)

    def _qty(self, symbol: str, bid: bool, price: float) -> float:
        qty = self.books[symbol].side(bid).get(price)
        if qty is None:
            spec = self.markets[symbol].spec
            qty = spec.round_qty(fresh_qty(symbol, bid, price, spec.level_qty))
        return qty

    def _set(self, symbol: str, bid: bool, price: float, qty: float) -> None:
        self.books[symbol].side(bid)[price] = max(self.markets[symbol].spec.round_qty(qty), 0.0)

    def _cancel(
        self,
        symbol: str,
        bid: bool,
        price: float,
        share: float,
        resting: list[tuple[int, bool, float]],
        rng: np.random.Generator,
    ) -> None:
        shown = self._qty(symbol, bid, price)
        cut = self.markets[symbol].spec.round_qty(shown * share)
        if cut <= 0:
            return
        self._set(symbol, bid, price, shown - cut)
        for order_id, is_buy, order_price in resting:
            ahead = self.ahead.get(order_id)
            if ahead and is_buy == bid and order_price == price and rng.random() < ahead / shown:
                self.ahead[order_id] = max(ahead - cut, 0.0)

    def _trade(
        self,
        symbol: str,
        hit_bid: bool,
        size: float,
        now: int,
        fill: FillOrder,
        resting: list[tuple[int, bool, float]],
    ) -> None:
        market = self.markets[symbol]
        shown_levels = market.bids(TOP_LEVELS) if hit_bid else market.asks(TOP_LEVELS)
        if not shown_levels:
            return
        price = shown_levels[0].price
        size = min(size, shown_levels[0].qty)  # a larger order would sweep: keep it one level
        left, ours = size, 0.0
        for order_id, is_buy, order_price in resting:
            if is_buy != hit_bid or order_price != price or left <= 0:
                continue
            ahead = self.ahead.get(order_id, 0.0)
            used = min(ahead, left)
            self.ahead[order_id] = ahead - used
            left -= used
            if left > 0:
                executed = fill(order_id, left, price)
                ours += executed
                left -= executed
        shown = self._qty(symbol, hit_bid, price)
        self._set(symbol, hit_bid, price, shown - (size - ours))
        self.record(symbol, price, market.spec.round_qty(size), now, buyer_maker=hit_bid)

    def _prune(self, symbol: str, market: PriceProcess) -> None:
        """Forget prices far from the touch (bounded memory over long runs)."""
        far = 200 * market.spread
        book = self.books[symbol]
        for levels in (book.bids, book.asks):
            if len(levels) > 600:
                for price in [p for p in levels if math.fabs(p - market.last) > far]:
                    del levels[price]
