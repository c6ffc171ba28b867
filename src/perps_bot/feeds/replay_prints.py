"""A live run's own prints, taken out of its captured trade tape for the replay's
matching (SPEC 14).

The exchange publishes every execution, the run's own too: each of its market orders
(and limit orders that crossed on arrival) printed trades on the public tape the run
captured. Replayed as they are, the paper venue took them for other participants'
trades: one could fill the replay's resting orders (a trade at or through their price,
a queue advanced), and a book's `last` it set could trigger a stop, though the bot's
own order never trades against its own. The capture's `fill` rows hold each taker
fill (side, quantity, average price, when it was seen), and its `sent` row when the
request left: the prints on the tape that fill explains are one trade of its side,
size and price, or a run of its side's trades in tape order that add up to its size at
its average price (a market order that took several levels), printed between the
request leaving and the fill being seen, at most `LOOKBACK_MS` before the latter (with
`SKEW_MS` either side: the tape is stamped with the exchange's clock, the rows with the
bot's). Each fill takes its
prints once; another participant's trade of the same size at another time stays.

A book whose `last` is the price of an own print that no other trade followed shows
the market's trade before it instead (when one was seen). Only what the paper venue
matches against changes (feeds.replay_own.OwnBookView calls this): the strategy sees
the tape as the live one did.
"""

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from perps_bot.domain import BookSnapshot, PublicTrade, Side

#: the exchange's clock against the bot's: how far outside the request's time a print
#: of its fill may be stamped
SKEW_MS = 1_000
#: how long before the fill was seen its prints are looked for at most: the venue sees
#: a fill at its next poll of the order (`exchange.poll_interval`, 1 s by default), a
#: stop-loss sent long before it triggered printed only then
LOOKBACK_MS = 10_000
_REL = 1e-9
_PRICE_REL = 1e-6  # an average price as the exchange rounds it


@dataclass(frozen=True, slots=True)
class OwnTake:
    """One taker fill of the run: what its prints add up to, and when they were made."""

    symbol: str
    taker: Side
    qty: float
    price: float
    since: int
    until: int


def own_takes(rows: Iterable[Mapping[str, Any]]) -> list[OwnTake]:
    """The run's taker fills, from its order rows, in the order they were sent."""
    sent: dict[str, int] = {}
    takes: list[OwnTake] = []
    for row in rows:
        cid, step = row.get("client_id"), row["step"]
        if step == "sent" and cid:
            sent[str(cid)] = int(row["wall_ms"])
        elif step == "fill" and row.get("liquidity") == "taker" and row.get("fill_qty"):
            seen = max(int(row["wall_ms"]), int(row.get("fill_ts") or row["wall_ms"]))
            since = max(sent.get(str(cid), 0), seen - LOOKBACK_MS) - SKEW_MS
            side = Side.BUY if row["side"] == "buy" else Side.SELL
            takes.append(OwnTake(str(row["symbol"]), side, float(row["fill_qty"]),
                                 float(row["fill_price"]), since, seen + SKEW_MS))  # fmt: skip
    return sorted(takes, key=lambda t: t.since)


class OwnPrints:
    """A book less the own prints among its trades (module docstring). Called for every
    book in the order they were captured; each take's prints are found once, by the
    tape's times (not the books': a book of another symbol, or a clock stepped back,
    may come with an earlier time, and a print already taken out is not looked for
    again, nor another's of the same size taken in its place)."""

    def __init__(self, takes: Sequence[OwnTake]) -> None:
        self._takes = list(takes)
        self._starts = [t.since for t in self._takes]
        self._taken: set[int] = set()  # the takes whose prints were found
        self._own_last: dict[str, float] = {}  # an own print, the tape's latest
        self._other_last: dict[str, float] = {}  # the latest print of the others

    def __call__(self, book: BookSnapshot) -> BookSnapshot:
        if not book.trades:
            return self._last(book)
        mine = self._claimed(book)
        self._seen(book.symbol, book.trades, mine)
        if mine:
            kept = tuple(t for i, t in enumerate(book.trades) if i not in mine)
            book = replace(book, trades=kept)
        return self._last(book)

    def _claimed(self, book: BookSnapshot) -> set[int]:
        """The indices of the book's trades that own takes explain."""
        mine: set[int] = set()
        trades = book.trades
        first, last = min(t.ts for t in trades), max(t.ts for t in trades)
        for n in range(bisect.bisect_right(self._starts, last)):
            take = self._takes[n]
            if n in self._taken or take.symbol != book.symbol or take.until < first:
                continue
            free = [i for i, t in enumerate(trades) if i not in mine and _may_be(take, t)]
            found = _prints_of(take, trades, free)
            if found:
                self._taken.add(n)
                mine.update(found)
        return mine

    def _seen(self, symbol: str, trades: Sequence[PublicTrade], mine: set[int]) -> None:
        for i, trade in enumerate(trades):
            if i in mine:
                self._own_last[symbol] = trade.price
            else:
                self._other_last[symbol] = trade.price
                self._own_last.pop(symbol, None)

    def _last(self, book: BookSnapshot) -> BookSnapshot:
        own, other = self._own_last.get(book.symbol), self._other_last.get(book.symbol)
        last = book.last
        if own is None or other is None or last is None or not _same(last, own, _PRICE_REL):
            return book
        return replace(book, last=other)


def _may_be(take: OwnTake, trade: PublicTrade) -> bool:
    return trade.taker is take.taker and take.since <= trade.ts <= take.until


def _prints_of(take: OwnTake, trades: Sequence[PublicTrade], free: list[int]) -> list[int]:
    """One trade of the take's size and price, else the first run of consecutive ones
    adding up to its size at its average price; [] when none does."""
    for i in free:
        if _same(trades[i].qty, take.qty) and _same(trades[i].price, take.price, _PRICE_REL):
            return [i]
    for start in range(len(free)):
        qty = cost = 0.0
        for end in range(start, len(free)):
            if end > start and free[end] != free[end - 1] + 1:
                break  # another trade in between: not one order's sweep
            trade = trades[free[end]]
            qty, cost = qty + trade.qty, cost + trade.qty * trade.price
            if _same(qty, take.qty):
                if _same(cost / qty, take.price, _PRICE_REL):
                    return free[start : end + 1]
                break
            if qty > take.qty:
                break
    return []


def _same(a: float, b: float, rel: float = _REL) -> bool:
    """Equal but for `rel` of the larger (of 1.0 near zero)."""
    return math.isclose(a, b, rel_tol=rel, abs_tol=rel)
