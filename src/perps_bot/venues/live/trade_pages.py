"""Every trade of the account since a time, page by page (SPEC 9: nothing lost).

Binance's account trade list answers at most 1000 trades a call, from one window of at
most 7 days, and keeps 6 months; its forced-order list at most 100 a call, 7 days too.
One call from `since` read the first page of its first week only: a gap of more trades
or longer than a week had its later trades adopted with the position, never booked.

Trades: the week windows from `since` on are read until one holds a trade, then the
trades after the last one read are paged by id (`fromId`, any time) until a page is
not full. Liquidation orders: week windows from `since` to the last trade, each paged
on from its last order's time while full. A gap older than the exchange keeps, or more
trades than a reconciliation books, raises FillsOutOfReach: the bot stops trading.
"""

from collections.abc import Awaitable, Callable
from typing import Any

import ccxt.async_support as ccxt_async

from perps_bot.domain import short
from perps_bot.domain.timeutil import iso_utc
from perps_bot.venues.base import FillsOutOfReach

DAY_MS = 86_400_000
#: the longest window of one trade or forced-order read (Binance: 7 days)
WEEK_MS = 7 * DAY_MS
#: how far back the exchange lists the account's trades (Binance: 6 months)
HISTORY_MS = 180 * DAY_MS
#: trades a call answers at most (Binance: 1000), forced orders (100)
TRADE_PAGE = 1000
FORCED_PAGE = 100
#: the most trades one reconciliation reads for a symbol (then: FillsOutOfReach)
MAX_TRADES = 100 * TRADE_PAGE

#: one read of the trade list with these request parameters (ccxt's trades back)
Fetch = Callable[[dict[str, Any]], Awaitable[Any]]


async def trades_since(fetch: Fetch, symbol: str, since_ms: int, now_ms: int) -> list[Any]:
    """Every trade of the account on `symbol` from `since_ms` on, oldest first."""
    if now_ms - since_ms > HISTORY_MS:
        raise FillsOutOfReach(
            f"{symbol}: the exchange fills since {iso_utc(since_ms)} go back more than"
            f" {HISTORY_MS // DAY_MS} days, beyond the exchange's trade history: they"
            " cannot be booked"
        )
    start = since_ms
    while True:
        end = start + WEEK_MS - 1
        page = _listed(await fetch({"startTime": start, "endTime": end, "limit": TRADE_PAGE}))
        if page or end >= now_ms:
            break
        start = end + 1
    trades = list(page)
    while page and (len(page) >= TRADE_PAGE or end < now_ms):
        if len(trades) >= MAX_TRADES:
            raise FillsOutOfReach(
                f"{symbol}: more than {MAX_TRADES} exchange trades since {iso_utc(since_ms)}:"
                " too many to book in one reconciliation"
            )
        page = _listed(await fetch({"fromId": _last_id(page) + 1, "limit": TRADE_PAGE}))
        trades.extend(page)
        end = now_ms  # paged by id: every trade up to now is read
    return trades


async def forced_since(fetch: Fetch, since_ms: int, until_ms: int) -> list[Any]:
    """The forced orders (liquidations) from `since_ms` to `until_ms`, week by week."""
    rows: list[Any] = []
    start = since_ms
    while start <= until_ms:
        end = min(start + WEEK_MS - 1, until_ms)
        page = _listed(await fetch({"startTime": start, "endTime": end, "limit": FORCED_PAGE}))
        rows.extend(page)
        while len(page) >= FORCED_PAGE and len(rows) < MAX_TRADES:
            # the next page starts at the last order's time (orders of that ms twice: the
            # caller keys them by order id)
            page = _listed(
                await fetch({"startTime": _time(page[-1]), "endTime": end, "limit": FORCED_PAGE})
            )
            rows.extend(page)
            if all(_time(row) == _time(page[0]) for row in page):
                break  # one ms holds a full page: no later start would move on
        start = end + 1
    return rows


def _listed(answer: Any) -> list[Any]:
    if not isinstance(answer, list):
        raise ccxt_async.BadResponse(f"a list answer was {type(answer).__name__}, not a list")
    return answer


def _last_id(page: list[Any]) -> int:
    try:
        return max(int(row["id"]) for row in page)
    except (TypeError, ValueError, KeyError) as exc:
        raise ccxt_async.BadResponse(
            f"a trade without a numeric id: {short(str(page), 80)}"
        ) from exc


def _time(row: Any) -> int:
    try:
        return int(row["time"])
    except (TypeError, ValueError, KeyError) as exc:
        raise ccxt_async.BadResponse(
            f"a forced order without a time: {short(str(row), 80)}"
        ) from exc
