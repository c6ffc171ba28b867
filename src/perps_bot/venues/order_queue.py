"""Open orders of a simulated venue, organised so that most market events are dismissed
in O(1): per symbol, queued orders (waiting for their latency or a price) apart from
resting limit orders sorted best price first; and the points of an event at which they
are matched (a quote, a book snapshot, a candle's path points)."""

import bisect
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from perps_bot.domain import BookSnapshot, Candle, MarketEvent, Order, Quote, Side
from perps_bot.domain.enums import BUY, SELL
from perps_bot.domain.pickled import by_fields
from perps_bot.venues.book import Book, touch_around
from perps_bot.venues.fill_rules import candle_path, is_crossed, traded_range


@dataclass(slots=True)
class MatchPoint:
    """One moment at which orders are matched: a quote, a snapshot or a candle path point."""

    cutoff: int  # an order acts here if it is live strictly before this time
    bid: float | None
    ask: float | None
    last: float | None
    book: Book | None = None  # real levels; None -> synthesize around bid/ask
    continuous: bool = False  # a candle path point reached through every price between
    #: a continuous point: when the move to it began (the previous point's cutoff); an
    #: order live only later did not see the prices passed on the way
    since: int = 0
    #: the mark price at this point, where the event gives one (quotes, snapshots, a
    #: candle with a mark series' extremes): what trigger orders follow (venues.triggers)
    mark: float | None = None
    #: a real book's public trades since the symbol's previous book: (lowest, highest)
    #: price, None when none printed
    traded: tuple[float, float] | None = None

    def __init__(
        self,
        cutoff: int,
        bid: float | None,
        ask: float | None,
        last: float | None,
        book: Book | None = None,
        continuous: bool = False,
        since: int = 0,
        mark: float | None = None,
        traded: tuple[float, float] | None = None,
    ) -> None:
        """Written out, not generated (perps_bot.domain.record says why)."""
        self.cutoff = cutoff
        self.bid = bid
        self.ask = ask
        self.last = last
        self.book = book
        self.continuous = continuous
        self.since = since
        self.mark = mark
        self.traded = traded

    def __reduce__(self) -> tuple[object, ...]:
        """Copied and pickled through `__init__` (perps_bot.domain.pickled)."""
        return by_fields(self)

    def through(self, side: Side) -> float | None:
        """The trade price a resting order on `side` is crossed by here, if any (a buy by
        the lowest, a sell by the highest): a quote's last, a candle's path price; on a
        real book one of its public trades, printed since the symbol's previous book,
        when a resting order was already there. Never a book's `last`: the market's
        latest trade, however old, maybe from before the order existed."""
        if self.book is None:
            return self.last
        traded = self.traded
        if traded is None:
            return None
        return traded[0] if side is BUY else traded[1]


def match_points(event: MarketEvent, adaptive: bool, spread_bps: float) -> Iterable[MatchPoint]:
    """The event's match points in time order; a candle's are built as the matching
    loop reaches them (its market order fills at the open, and the loop stops there).
    `adaptive`: the candle path's rule (fill_rules.candle_path); `spread_bps`: the touch
    around a candle's path prices."""
    if isinstance(event, Quote):
        return (MatchPoint(event.ts + 1, event.bid, event.ask, event.last, mark=event.mark),)
    if isinstance(event, BookSnapshot):
        book = Book.from_snapshot(event)
        return (
            MatchPoint(event.ts + 1, book.best_bid, book.best_ask, event.last, book,
                       mark=event.mark, traded=traded_range(event.trades)),
        )  # fmt: skip
    if isinstance(event, Candle):
        return _candle_points(event, adaptive, spread_bps)
    return ()  # FundingRate, MarkPrice: nothing trades


_NO_MARKS: tuple[None, None, None, None] = (None, None, None, None)


def _candle_points(candle: Candle, adaptive: bool, spread_bps: float) -> Iterator[MatchPoint]:
    prices = candle_path(candle, adaptive=adaptive)
    marks = _NO_MARKS if candle.mark_low is None else mark_path(candle, prices)
    start, end = candle.open_time, candle.ts
    span = max(end - start, 0)
    # point i acts for orders live before the next point's time (1/3, 2/3 of the bar,
    # its close), the close for orders live at or before it
    cutoffs = (start + span // 3, start + span * 2 // 3, end, end + 1)
    for i, price in enumerate(prices):
        bid, ask = touch_around(price, spread_bps)
        since = cutoffs[i - 1] if i else start
        yield MatchPoint(cutoffs[i], bid, ask, price, continuous=i > 0, since=since,
                         mark=marks[i])  # fmt: skip


def mark_path(
    candle: Candle, prices: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    """The mark at each point of a candle's price path, for a candle with the mark
    series' extremes inside it (a backtest's `--mark` file): at the open the open held
    inside the mark's range, at the path's high and low the mark's high and low, at the
    close the mark's close (the close held inside the range when the series has none)."""
    mark_low, mark_high = candle.mark_low, candle.mark_high
    assert mark_low is not None and mark_high is not None
    mark_open = min(max(candle.open, mark_low), mark_high)
    mark_close = candle.mark
    if mark_close is None:
        mark_close = min(max(candle.close, mark_low), mark_high)
    if prices[1] == candle.high:
        return mark_open, mark_high, mark_low, mark_close
    return mark_open, mark_low, mark_high, mark_close


@dataclass(slots=True, eq=False)  # identity equality: list.remove finds this very order
class WorkingOrder:
    order: Order
    live_ts: int
    seq: int  # submission order: ties and processing order within a point
    active: bool = False  # has reached the market (resting if still open)
    #: a trigger order whose trigger a mark update reached: a market order from then on
    fired: bool = False

    def __init__(
        self, order: Order, live_ts: int, seq: int, active: bool = False, fired: bool = False
    ) -> None:
        """Written out, not generated (perps_bot.domain.record says why)."""
        self.order = order
        self.live_ts = live_ts
        self.seq = seq
        self.active = active
        self.fired = fired

    def __reduce__(self) -> tuple[object, ...]:
        """Copied and pickled through `__init__` (perps_bot.domain.pickled)."""
        return by_fields(self)


def _buy_priority(item: WorkingOrder) -> tuple[float, int]:
    return -(item.order.price or 0.0), item.seq


def _sell_priority(item: WorkingOrder) -> tuple[float, int]:
    return item.order.price or 0.0, item.seq


class SymbolOrders:
    """Open orders of one symbol: queued (waiting for latency or for a price) and resting
    limit orders sorted best price first, so an event that crosses nothing, with no
    queued order due, is dismissed in O(1) and a crossing only visits crossed orders."""

    __slots__ = ("buys", "next_live", "queued", "sells")

    def __init__(self) -> None:
        self.queued: list[WorkingOrder] = []
        self.buys: list[WorkingOrder] = []  # highest limit first
        self.sells: list[WorkingOrder] = []  # lowest limit first
        self.next_live: float = math.inf

    def __bool__(self) -> bool:
        return bool(self.queued or self.buys or self.sells)

    def queue(self, item: WorkingOrder) -> None:
        self.queued.append(item)
        self.next_live = min(self.next_live, item.live_ts)

    def unqueue(self, item: WorkingOrder) -> None:
        queued = self.queued
        queued.remove(item)
        self.next_live = min(w.live_ts for w in queued) if queued else math.inf

    def rest(self, item: WorkingOrder) -> None:
        if item.order.side is BUY:
            bisect.insort(self.buys, item, key=_buy_priority)
        else:
            bisect.insort(self.sells, item, key=_sell_priority)

    def discard(self, item: WorkingOrder) -> None:
        if not item.active:
            self.unqueue(item)
            return
        resting = self.buys if item.order.side is BUY else self.sells
        if item in resting:
            resting.remove(item)

    def may_act(self, ts: int, low: float, high: float) -> bool:
        """Whether an event at `ts` spanning [low, high] can touch any order."""
        return (
            ts >= self.next_live
            or (bool(self.buys) and low <= (self.buys[0].order.price or 0.0))
            or (bool(self.sells) and high >= (self.sells[0].order.price or math.inf))
        )

    def acting_at(self, point: "MatchPoint", by_arrival: bool = False) -> list[WorkingOrder]:
        """Orders that act at `point`, in submission order: queued ones now live, resting
        ones the point crosses. `by_arrival` (latencies that differ per order): in the
        order they reached the market, ties in submission order; with one constant
        latency that is the submission order anyway."""
        acting = [w for w in self.queued if w.live_ts < point.cutoff]
        through = point.through(BUY)
        for item in self.buys:
            if not is_crossed(BUY, item.order.price or 0.0, point.ask, through):
                break
            acting.append(item)
        through = point.through(SELL)
        for item in self.sells:
            if not is_crossed(SELL, item.order.price or math.inf, point.bid, through):
                break
            acting.append(item)
        if len(acting) > 1:
            acting.sort(key=_arrival if by_arrival else _submission)
        return acting


def _submission(item: WorkingOrder) -> int:
    return item.seq


def _arrival(item: WorkingOrder) -> tuple[int, int]:
    return item.live_ts, item.seq
