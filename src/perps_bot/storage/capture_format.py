"""The capture's row format (SPEC 14): market events <-> Parquet rows, one schema for the
writer (storage.capture) and the reader (feeds.replay).

One `events` table, rows in the order the bot saw them, `kind` saying which columns
matter:

| kind | columns |
|---|---|
| `book` | a full book: `bid_px`, `bid_qty`, `ask_px`, `ask_qty` (best first), `last`, `mark` |
| `book_update` | levels changed since the symbol's previous book (qty 0: gone), `last`, `mark` |
| `trade` | a public trade, handed out with the next book: `price`, `qty`, `taker`, `trade_ts` |
| `mark` | `mark` |
| `funding` | `rate`, `mark` |
| `quote` | `bid_px[0]`, `ask_px[0]`, `last`, `mark` |

Every chunk starts each symbol with a `book` (a chunk can be read on its own), later
books of the symbol in the chunk are `book_update`s. `ts` is the bot's receipt time.
Floats are float64 both ways, so a replayed book equals the one the bot saw.

A `warmup` table (`warmup.parquet`, one file, written at start) holds the closed
candles the run's strategies were warmed up with (orchestrator.warmup): `ts` (close),
`symbol`, `open_time`, `open`, `high`, `low`, `close`, `volume`, oldest first per
symbol. A replay warms its strategies up from it, so they start where the run's did.

An `orders` table holds the run's own order round trips, one row per step: `sent`
(the intent, right before the request), `acknowledged` (the venue answered the request,
`reason` its status then; a retried request's answered attempt is an `attempt` row
before it, at the moment that attempt left; an order whose outcome only a look-up
found has a `looked_up` row there instead) or `unanswered` (it got no answer: retries
used up, outcome unknown, circuit breaker open; a capture from before this records
`acknowledged` for those too), each lifecycle status the venue reported
(`accepted`, `partially_filled`, `filled`, `canceled`, `rejected`, ...) and `fill`
(price, quantity, fee, liquidity), each with the wall-clock ms it was seen at; `open`
is an order a reconciliation found open on the exchange that the run did not send (a
restarted bot's, left by its earlier run): its status and `filled` then.
"""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

from perps_bot.domain import (
    BookSnapshot,
    Candle,
    FundingRate,
    MarketEvent,
    MarkPrice,
    PublicTrade,
    Quote,
    Side,
)

EVENT_COLUMNS = ("ts", "kind", "symbol", "bid_px", "bid_qty", "ask_px", "ask_qty", "last",
                 "mark", "rate", "price", "qty", "taker", "trade_ts")  # fmt: skip
ORDER_COLUMNS = ("wall_ms", "step", "client_id", "symbol", "side", "type", "size", "price",
                 "created_ts", "reduce_only", "filled", "avg_price", "fill_ts", "fill_qty",
                 "fill_price", "fee", "liquidity", "reason")  # fmt: skip

_F, _I, _S, _L = pa.float64(), pa.int64(), pa.string(), pa.list_(pa.float64())
EVENT_SCHEMA = pa.schema([("ts", _I), ("kind", _S), ("symbol", _S), ("bid_px", _L),
                          ("bid_qty", _L), ("ask_px", _L), ("ask_qty", _L), ("last", _F),
                          ("mark", _F), ("rate", _F), ("price", _F), ("qty", _F),
                          ("taker", _S), ("trade_ts", _I)])  # fmt: skip
ORDER_SCHEMA = pa.schema([("wall_ms", _I), ("step", _S), ("client_id", _S), ("symbol", _S),
                          ("side", _S), ("type", _S), ("size", _F), ("price", _F),
                          ("created_ts", _I), ("reduce_only", pa.bool_()), ("filled", _F),
                          ("avg_price", _F), ("fill_ts", _I), ("fill_qty", _F),
                          ("fill_price", _F), ("fee", _F), ("liquidity", _S),
                          ("reason", _S)])  # fmt: skip
WARMUP_SCHEMA = pa.schema([("ts", _I), ("symbol", _S), ("open_time", _I), ("open", _F),
                           ("high", _F), ("low", _F), ("close", _F), ("volume", _F)])  # fmt: skip
assert tuple(EVENT_SCHEMA.names) == EVENT_COLUMNS and tuple(ORDER_SCHEMA.names) == ORDER_COLUMNS

Levels = list[tuple[float, float]]


_EMPTY_ROW = dict.fromkeys(EVENT_COLUMNS)


class EventRows:
    """Rows of the events table (tuples in column order, turned into columns when a chunk
    is taken: one tuple per row is the cheapest thing to append); `add` turns one event
    into its rows."""

    def __init__(self) -> None:
        self._rows: list[tuple[Any, ...]] = []
        self._books: dict[str, tuple[dict[float, float], dict[float, float]]] = {}

    @property
    def rows(self) -> int:
        return len(self._rows)

    def _row(self, **values: Any) -> None:
        self._rows.append(tuple((_EMPTY_ROW | values).values()))

    def add(self, event: MarketEvent) -> None:
        if isinstance(event, BookSnapshot):
            self._book(event)
        elif isinstance(event, MarkPrice):
            self._row(ts=event.ts, kind="mark", symbol=event.symbol, mark=event.mark)
        elif isinstance(event, FundingRate):
            self._row(ts=event.ts, kind="funding", symbol=event.symbol, rate=event.rate,
                      mark=event.mark)  # fmt: skip
        elif isinstance(event, Quote):
            self._row(ts=event.ts, kind="quote", symbol=event.symbol, bid_px=[event.bid],
                      ask_px=[event.ask], last=event.last, mark=event.mark)  # fmt: skip

    def _book(self, book: BookSnapshot) -> None:
        for trade in book.trades:
            self._rows.append((book.ts, "trade", book.symbol, None, None, None, None, None,
                               None, None, trade.price, trade.qty, str(trade.taker),
                               trade.ts))  # fmt: skip
        bids, asks = dict(book.bids), dict(book.asks)
        previous = self._books.get(book.symbol)
        self._books[book.symbol] = (bids, asks)
        if previous is None:
            kind, bid_levels, ask_levels = "book", book.bids, book.asks
        else:
            kind = "book_update"
            bid_levels, ask_levels = _changes(previous[0], bids), _changes(previous[1], asks)
        self._rows.append((book.ts, kind, book.symbol,
                           [p for p, _ in bid_levels], [q for _, q in bid_levels],
                           [p for p, _ in ask_levels], [q for _, q in ask_levels],
                           book.last, book.mark, None, None, None, None, None))  # fmt: skip

    def take(self) -> dict[str, list[Any]]:
        """The buffered rows as columns; the next chunk starts every symbol with a full
        book."""
        rows, self._rows = self._rows, []
        self._books.clear()
        if not rows:
            return {name: [] for name in EVENT_COLUMNS}
        columns = zip(*rows, strict=True)
        return {name: list(column) for name, column in zip(EVENT_COLUMNS, columns, strict=True)}


def _changes(old: dict[float, float], new: dict[float, float]) -> Levels:
    out = [(p, q) for p, q in new.items() if old.get(p) != q]
    out.extend((p, 0.0) for p in old if p not in new)
    return out


def events_from_rows(rows: Iterable[dict[str, Any]]) -> Iterator[MarketEvent]:
    """The events a run saw, rebuilt from its rows (in order, books with their trades)."""
    books: dict[str, tuple[dict[float, float], dict[float, float]]] = {}
    trades: dict[str, list[PublicTrade]] = {}
    for row in rows:
        kind, symbol, ts = row["kind"], row["symbol"], int(row["ts"])
        if kind == "trade":
            taker = Side.BUY if row["taker"] == "buy" else Side.SELL
            trades.setdefault(symbol, []).append(
                PublicTrade(int(row["trade_ts"]), row["price"], row["qty"], taker)
            )
        elif kind in ("book", "book_update"):
            if kind == "book" or symbol not in books:
                books[symbol] = ({}, {})
            bids, asks = books[symbol]
            _apply(bids, row["bid_px"], row["bid_qty"])
            _apply(asks, row["ask_px"], row["ask_qty"])
            yield BookSnapshot(
                ts, symbol,
                sorted(bids.items(), key=lambda level: -level[0]),
                sorted(asks.items()),
                last=row["last"], mark=row["mark"],
                trades=tuple(trades.pop(symbol, ())),
            )  # fmt: skip
        elif kind == "mark":
            yield MarkPrice(ts, symbol, row["mark"])
        elif kind == "funding":
            yield FundingRate(ts, symbol, row["rate"], row["mark"])
        elif kind == "quote":
            yield Quote(ts, symbol, row["last"], row["bid_px"][0], row["ask_px"][0], row["mark"])


def _apply(side: dict[float, float], prices: list[float] | None, qtys: list[float] | None) -> None:
    for price, qty in zip(prices or (), qtys or (), strict=True):
        if qty == 0.0:
            side.pop(price, None)
        else:
            side[price] = qty


def warmup_columns(candles: Mapping[str, Sequence[Candle]]) -> dict[str, list[Any]]:
    """The warm-up candles of every symbol as the `warmup` table's columns."""
    rows = [c for symbol in candles for c in candles[symbol]]
    return {name: [getattr(c, name) for c in rows] for name in WARMUP_SCHEMA.names}


def warmup_from_rows(rows: Iterable[dict[str, Any]]) -> dict[str, list[Candle]]:
    """The warm-up candles per symbol, back from the `warmup` table's rows."""
    out: dict[str, list[Candle]] = {}
    for row in rows:
        candle = Candle(ts=int(row["ts"]), symbol=row["symbol"], open_time=int(row["open_time"]),
                        open=row["open"], high=row["high"], low=row["low"],
                        close=row["close"], volume=row["volume"])  # fmt: skip
        out.setdefault(candle.symbol, []).append(candle)
    return out
