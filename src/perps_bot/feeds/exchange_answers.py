"""Turning one answer of the exchange into market events, shared by the polling feed
(feeds.exchange) and the streaming one (feeds.exchange_stream), so a streamed book and
a polled one become events through the same code: the premium index (mark price, and
funding settled exactly once per period, see feeds.exchange), the ticker's last
price, the order book's levels. An unusable answer is logged on one line and counted
in `errors`; it never raises.

A mixin of `ExchangeFeed`: the attributes below are the feed's, declared here for the
type checker.
"""

import logging
import math
from dataclasses import dataclass
from typing import Any

from perps_bot.domain import BookSnapshot, FundingRate
from perps_bot.exchange.runtime import one_line
from perps_bot.feeds.trades import TradeTape

log = logging.getLogger("perps_bot.feeds.exchange")  # the feed's own logger

#: Order book levels, best first: (price, quantity).
Levels = list[tuple[float, float]]


@dataclass(slots=True)
class FundingPeriod:
    """The funding period the exchange announced last: when it settles and at what rate."""

    funding_time: int
    rate: float


class AnswerParsing:
    _book_limit: int
    _last_ts: int
    _last_update: dict[str, int]
    _funding: dict[str, FundingPeriod]
    _last_funding_emitted: dict[str, int]
    tape: TradeTape
    errors: int

    def _premium_mark(self, symbol: str, premium: Any) -> float | None:
        """The mark price of a premium-index answer; None (failure logged) if unusable."""
        if isinstance(premium, Exception):
            self._record_failure(f"{symbol} premium index: {one_line(premium)}")
            return None
        mark = positive(premium.get("markPrice") if isinstance(premium, dict) else None)
        if mark is None:
            self._record_failure(f"{symbol} premium index: no valid mark price")
        return mark

    def _ticker_last(self, symbol: str, ticker: Any) -> tuple[bool, float | None]:
        """(request ok, last price or None) of a ticker answer; a failure is logged."""
        if isinstance(ticker, Exception):
            return self._record_failure(f"{symbol} ticker: {one_line(ticker)}"), None
        return True, positive(ticker.get("last")) if isinstance(ticker, dict) else None

    def _book_levels(self, symbol: str, book: Any) -> tuple[Levels, Levels] | None:
        """(bids, asks) of an order book answer; None (failure logged) if unusable."""
        if isinstance(book, Exception):
            self._record_failure(f"{symbol} order book: {one_line(book)}")
            return None
        parsed = parse_book(book, self._book_limit)
        if parsed is None:
            self._record_failure(f"{symbol} order book: malformed or empty")
        return parsed

    def _snapshot(
        self,
        symbol: str,
        now: int,
        levels: tuple[Levels, Levels],
        last: float | None,
        mark: float | None,
    ) -> BookSnapshot:
        """The event for a good book; it also moves `last_update(symbol)`."""
        self._last_update[symbol] = now
        bids, asks = levels
        trades = self.tape.take(symbol)
        return BookSnapshot(now, symbol, bids, asks, last=last, mark=mark, trades=trades)

    def _funding_events(
        self, symbol: str, now: int, premium: dict[str, Any], mark: float
    ) -> list[FundingRate]:
        rate = finite(premium.get("fundingRate"))
        next_time = premium.get("fundingTimestamp")
        next_time = int(next_time) if isinstance(next_time, int | float) else None
        events: list[FundingRate] = []
        period = self._funding.get(symbol)
        if period is not None:
            due = period.funding_time
            rolled = next_time is not None and next_time > due
            if (rolled or now >= due) and due > self._last_funding_emitted.get(symbol, -1):
                settled_rate = period.rate if rolled or rate is None else rate
                ts = min(max(due, self._last_ts), now)
                events.append(FundingRate(ts, symbol, settled_rate, mark))
                self._last_funding_emitted[symbol] = due
        if next_time is not None and rate is not None:
            if period is None and next_time <= now:
                # first sight, the exchange not rolled yet: that period ended before the
                # feed saw the symbol (a resumed run has booked it already)
                self._last_funding_emitted[symbol] = next_time
            self._funding[symbol] = FundingPeriod(next_time, rate)
        return events

    def _record_failure(self, what: str) -> bool:
        self.errors += 1
        log.warning("exchange feed: %s", what)
        return False


def finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def positive(value: Any) -> float | None:
    number = finite(value)
    return number if number is not None and number > 0 else None


def parse_levels(levels: Any, limit: int) -> Levels | None:
    """Up to `limit` levels of one side, or None when the side is malformed.

    A level with quantity 0 is left out: nothing can trade there, and the capture
    (storage.capture_format) stores a book as quantities by price where 0 means
    "removed", so its replay could not hold it. A price listed twice makes the side
    malformed: which quantity is true is unknowable, and the capture would hold one."""
    if not isinstance(levels, list):
        return None
    parsed: Levels = []
    prices: set[float] = set()
    for level in levels[:limit]:
        if not isinstance(level, list | tuple) or len(level) < 2:
            return None
        price, qty = positive(level[0]), finite(level[1])
        if price is None or qty is None or qty < 0 or price in prices:
            return None
        prices.add(price)
        if qty > 0:
            parsed.append((price, qty))
    return parsed


def parse_book(book: Any, limit: int) -> tuple[Levels, Levels] | None:
    """(bids, asks) from a ccxt order book, or None when it is malformed or one-sided."""
    if not isinstance(book, dict):
        return None
    bids = parse_levels(book.get("bids"), limit)
    asks = parse_levels(book.get("asks"), limit)
    if not bids or not asks:
        return None
    return bids, asks
