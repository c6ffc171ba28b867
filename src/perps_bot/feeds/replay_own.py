"""A live run's own resting orders, taken out of its captured books for the replay's
matching (SPEC 14).

A live run's orders were on the exchange: the order books it captured show its own
resting limit orders in the levels at their prices. Its replay sends the same orders to
the paper venue, which would queue behind (`--fill-model queue`) or take liquidity that
was its own twin, and whose market orders would walk quantity that was the bot's own:
paper would then mis-measure the drift. The capture holds each order's lifecycle (the
`orders` table: storage.capture_format), so while an order rested, from the moment the
exchange acknowledged it (the request's answer, or its `accepted` update; for an order
left by an earlier run, the reconciliation that found it open) until the run
learnt it ended (filled, canceled, rejected, expired), the quantity it still had is
taken off its level, never below nothing (a book fetched just before the order arrived
does not show it), and a level with nothing left is gone.

Only what the paper venue matches against changes (`OwnBookView` is its matching
input): the strategy sees the books as the live one did, its own order in them, and
the drift report measures arrival mids on the captured books. A dry run's orders never
reached the exchange: its capture is replayed as it is.
"""

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from perps_bot.domain import BookSnapshot, MarketEvent
from perps_bot.feeds.replay_prints import OwnPrints

_STARTS = ("accepted", "partially_filled")  # an acknowledgement's status, or an update
_ENDS = ("filled", "canceled", "rejected", "expired")
_EMPTY = 1e-12


@dataclass(slots=True)
class OwnResting:
    """One of the run's limit orders while it rested: (time, quantity left) steps."""

    symbol: str
    buy: bool
    price: float
    start: int
    end: float  # math.inf: the capture never saw it end
    times: list[int] = field(default_factory=list)
    left: list[float] = field(default_factory=list)

    def left_at(self, ts: int) -> float:
        i = bisect.bisect_right(self.times, ts) - 1
        return self.left[i] if i >= 0 else 0.0


def own_resting(rows: Iterable[Mapping[str, Any]]) -> list[OwnResting]:
    """The run's limit orders that rested on the exchange, from its order rows."""
    by_order: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        if row.get("client_id"):
            by_order.setdefault(str(row["client_id"]), []).append(row)
    found = (_resting(steps) for steps in by_order.values())
    return [r for r in found if r is not None]


def _resting(rows: Sequence[Mapping[str, Any]]) -> OwnResting | None:
    about = [r for r in rows if r.get("type") is not None]
    if not about or about[-1]["type"] != "limit" or about[-1].get("price") is None:
        return None
    start = end = None
    for row in rows:  # an acknowledgement only starts it: a capture from before the
        # writer took the status at the request's answer may show a later one there
        status = row["step"]
        if status in ("acknowledged", "open"):  # an answer, or found open on the exchange
            status = row["reason"] if row["reason"] in _STARTS else None
        if start is None and status in _STARTS:
            start = int(row["wall_ms"])
        if status in _ENDS:
            end = int(row["wall_ms"])
            break
    if start is None or (end is not None and end <= start):
        return None  # never rested (filled on arrival, rejected, never answered)
    last = about[-1]
    resting = OwnResting(str(last["symbol"]), last["side"] == "buy", float(last["price"]),
                         start, math.inf if end is None else end)  # fmt: skip
    _fill_steps(resting, rows, float(last["size"]))
    return resting


def _fill_steps(resting: OwnResting, rows: Sequence[Mapping[str, Any]], size: float) -> None:
    """The quantity left over time: the size less the executed part, as the updates
    (cumulative `filled`) or the fills (`fill_qty` at the exchange's `fill_ts`) tell."""
    changes: list[tuple[int, float | None, float]] = []
    for row in rows:
        if row["step"] == "fill" and row.get("fill_qty") is not None:
            at = row.get("fill_ts")
            changes.append((int(row["wall_ms"] if at is None else at), None,
                            float(row["fill_qty"])))  # fmt: skip
        elif row.get("filled") is not None:
            changes.append((int(row["wall_ms"]), float(row["filled"]), 0.0))
    reported = summed = _before_the_run(rows)
    resting.times.append(resting.start)
    resting.left.append(max(size - summed, 0.0))
    for at, filled, quantity in sorted(changes, key=lambda c: c[0]):
        reported = reported if filled is None else max(reported, filled)
        summed += quantity
        resting.times.append(max(at, resting.start))
        resting.left.append(max(size - max(reported, summed), 0.0))


def _before_the_run(rows: Sequence[Mapping[str, Any]]) -> float:
    """What an order found open at a reconciliation had executed then (its fills in the
    run add to that); 0 for the run's own orders."""
    for row in rows:
        if row["step"] == "open" and row.get("filled") is not None:
            return float(row["filled"])
    return 0.0


class OwnBookView:
    """The paper venue's matching input for a live capture's replay: each book without
    the run's own resting quantity (module docstring), and its trades without the run's
    own prints (feeds.replay_prints). Called for every event, in time
    order; the orders resting at a book's time are kept as a sweep."""

    def __init__(
        self,
        resting: Sequence[OwnResting],
        ticks: Mapping[str, float],
        prints: OwnPrints | None = None,
    ) -> None:
        """`prints`: the run's own prints, taken out of the books' trades first."""
        self._pending = sorted(resting, key=lambda r: r.start)
        self._ticks = ticks
        self._prints = prints
        self._next = 0
        self._active: list[OwnResting] = []
        self._last_ts = -math.inf

    def __call__(self, event: MarketEvent) -> MarketEvent:
        if type(event) is not BookSnapshot:
            return event
        ts = event.ts
        if ts < self._last_ts:  # not in time order: sweep again from the start
            self._next, self._active = 0, []
        self._last_ts = ts
        if self._prints is not None:
            event = self._prints(event)
        pending = self._pending
        while self._next < len(pending) and pending[self._next].start <= ts:
            self._active.append(pending[self._next])
            self._next += 1
        if not self._active:
            return event
        self._active = [r for r in self._active if r.end > ts]
        mine = [r for r in self._active if r.symbol == event.symbol]
        if not mine:
            return event
        bids, asks = dict(event.bids), dict(event.asks)
        half = self._ticks.get(event.symbol, 0.0) / 2.0
        for order in mine:
            _take_off(bids if order.buy else asks, order.price, order.left_at(ts), half)
        return replace(event, bids=list(bids.items()), asks=list(asks.items()))


def _take_off(levels: dict[float, float], price: float, quantity: float, half: float) -> None:
    """`quantity` less at the level at `price` (within half a tick), never below 0."""
    if quantity <= _EMPTY:
        return
    for level, shown in levels.items():
        if abs(level - price) <= max(half, abs(price) * 1e-9):
            left = shown - quantity
            if left > _EMPTY * max(1.0, shown):
                levels[level] = left
            else:
                del levels[level]
            return
