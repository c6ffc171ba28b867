"""Market-data websocket streams in Binance USDM's raw-stream shape, for ccxt.pro.

Clients connect to any path with a ``ws`` segment (ccxt uses /public/ws/<n> for depth
and bookTicker, /market/ws/<n> for tickers and mark price), send
{"method": "SUBSCRIBE", "params": ["btcusdt@depth@100ms", ...], "id": N} and get
{"result": null, "id": N}. Supported channels: depth (diff stream), ticker,
miniTicker, bookTicker, markPrice. Other stream names are accepted and stay silent.

Events are published when a symbol's update id moved (step(), set_price(), a fill),
never on a timer of their own, so tests stay deterministic. Depth diffs carry U/u/pu
chained on the same update ids the REST /fapi/v1/depth snapshot reports as
lastUpdateId, list only changed levels, and "0" for removed ones: exactly the
sequence ccxt.pro's watch_order_book validates. Ticker-like channels also send the
current value right after subscribing so a watcher gets its first value without
waiting for a price move (Binance would wait for the next change).

Every connection has its own queue and writer task: publishing is synchronous and
never blocks step().

Outages for resilience tests: ``drop_connections()`` closes every open stream the
way a server restart does (close frame 1001 "going away"; ccxt.pro rejects the
pending watchers with a NetworkError), and with ``refuse=True`` answers every new
websocket upgrade with HTTP 503 until ``accept_connections()``, so a client cannot
simply reconnect at once. REST is not affected.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from perps_emulator.api_market import MarketData
from perps_emulator.flow import PublicTrade
from perps_emulator.markets import MAX_BOOK_LEVELS, PriceProcess

log = logging.getLogger(__name__)

TICKER_CHANNELS = ("ticker", "miniTicker", "bookTicker", "markPrice")
TRADE_CHANNELS = ("trade", "aggTrade")
CHANNELS = ("depth", *TICKER_CHANNELS, *TRADE_CHANNELS)


def parse_stream(name: str) -> tuple[str, str] | None:
    """'btcusdt@depth@100ms' -> ('BTCUSDT', 'depth'); None when not a supported channel."""
    parts = name.split("@")
    if len(parts) < 2 or parts[1] not in CHANNELS:
        return None
    return parts[0].upper(), parts[1]


@dataclass(eq=False)
class WsConnection:
    ws: web.WebSocketResponse
    streams: set[str] = field(default_factory=set)
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)

    def wants(self, symbol: str, channel: str) -> bool:
        return any(parse_stream(s) == (symbol, channel) for s in self.streams)

    def send(self, message: Mapping[str, Any]) -> None:
        self.queue.put_nowait(json.dumps(message))


@dataclass
class _BookState:
    update_id: int
    bids: dict[str, str]
    asks: dict[str, str]


class WsHub:
    """Connections, subscriptions and event fan-out."""

    def __init__(
        self, markets: Mapping[str, PriceProcess], data: MarketData, clock: Callable[[], int]
    ) -> None:
        self.markets = markets
        self.data = data
        self.clock = clock
        self.connections: set[WsConnection] = set()
        self._published: dict[str, int] = {s: m.update_id for s, m in markets.items()}
        self._trades_sent: dict[str, int] = {}  # symbol -> last public trade id streamed
        self._books: dict[str, _BookState] = {}
        #: While True, websocket upgrades are answered with HTTP 503 (a stream outage).
        self.refusing = False

    # --- outages (tests) ----------------------------------------------------------------

    async def drop_connections(self, *, refuse: bool = False) -> int:
        """Close every stream connection (1001 going away); with ``refuse`` also answer new
        upgrades with 503 until accept_connections(). Returns how many were closed."""
        self.refusing = self.refusing or refuse
        dropped = list(self.connections)
        for conn in dropped:
            conn.queue.put_nowait(None)
            await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"emulator outage")
        return len(dropped)

    def accept_connections(self) -> None:
        """End a refusal started by drop_connections(refuse=True)."""
        self.refusing = False

    # --- connection handling ----------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.refusing:
            return web.Response(status=503, text="stream outage (emulator)")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = WsConnection(ws)
        self.connections.add(conn)
        writer = asyncio.create_task(self._write(conn))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_text(conn, message.data)
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            self.connections.discard(conn)
            conn.queue.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            self._forget_unwatched_books()
        return ws

    async def close_all(self) -> None:
        for conn in list(self.connections):
            conn.queue.put_nowait(None)
            await conn.ws.close()

    async def _write(self, conn: WsConnection) -> None:
        while True:
            text = await conn.queue.get()
            if text is None or conn.ws.closed:
                return
            try:
                await conn.ws.send_str(text)
            except ConnectionError:
                return

    def _on_text(self, conn: WsConnection, data: str) -> None:
        try:
            request = json.loads(data)
            method, params, request_id = request["method"], request.get("params", []), request["id"]
        except (ValueError, KeyError, TypeError):
            conn.send({"error": {"code": 2, "msg": "Invalid request"}, "id": None})
            return
        if method == "SUBSCRIBE":
            new = [p for p in params if isinstance(p, str) and p not in conn.streams]
            conn.streams.update(new)
            conn.send({"result": None, "id": request_id})
            for stream in new:
                parsed = parse_stream(stream)
                if parsed is None or parsed[0] not in self.markets:
                    continue
                symbol, channel = parsed
                if channel == "depth":
                    self._watch_book(symbol)
                else:
                    conn.send(self._event(symbol, channel))
        elif method == "UNSUBSCRIBE":
            conn.streams.difference_update(p for p in params if isinstance(p, str))
            conn.send({"result": None, "id": request_id})
            self._forget_unwatched_books()
        elif method == "LIST_SUBSCRIPTIONS":
            conn.send({"result": sorted(conn.streams), "id": request_id})
        else:
            conn.send({"error": {"code": 1, "msg": f"Unknown method {method}"}, "id": request_id})

    # --- publishing -------------------------------------------------------------------

    def publish(self) -> None:
        """Send events for every symbol whose update id moved since the last publish."""
        for symbol, market in self.markets.items():
            if market.update_id == self._published[symbol]:
                continue
            self._published[symbol] = market.update_id
            diff = self._depth_diff(symbol)
            trades = self._new_trades(symbol)
            for conn in list(self.connections):
                for channel in TRADE_CHANNELS:
                    if trades and conn.wants(symbol, channel):
                        for trade in trades:
                            conn.send(self._trade_event(symbol, channel, trade))
                for channel in TICKER_CHANNELS:
                    if conn.wants(symbol, channel):
                        conn.send(self._event(symbol, channel))
                if diff is not None and conn.wants(symbol, "depth"):
                    conn.send(diff)

    def _new_trades(self, symbol: str) -> list[PublicTrade]:
        tape = self.data.engine.flow.trades[symbol]
        last = self._trades_sent.get(symbol, 0)
        fresh = [t for t in tape if t.trade_id > last]
        if tape:
            self._trades_sent[symbol] = tape[-1].trade_id
        return fresh

    def _trade_event(self, symbol: str, channel: str, trade: PublicTrade) -> dict[str, Any]:
        spec = self.markets[symbol].spec
        event: dict[str, Any] = {"e": channel, "E": trade.time, "T": trade.time, "s": symbol,
                                 "p": spec.fmt_price(trade.price), "q": spec.fmt_qty(trade.qty),
                                 "m": trade.buyer_maker}  # fmt: skip
        if channel == "trade":
            event.update({"t": trade.trade_id, "X": "MARKET"})
        else:
            event.update({"a": trade.trade_id, "f": trade.trade_id, "l": trade.trade_id})
        return event

    def _watch_book(self, symbol: str) -> None:
        if symbol not in self._books:
            market = self.markets[symbol]
            bids, asks = self._levels(market)
            self._books[symbol] = _BookState(market.update_id, bids, asks)

    def _forget_unwatched_books(self) -> None:
        for symbol in list(self._books):
            if not any(c.wants(symbol, "depth") for c in self.connections):
                del self._books[symbol]

    @staticmethod
    def _levels(market: PriceProcess) -> tuple[dict[str, str], dict[str, str]]:
        spec = market.spec
        bids = {spec.fmt_price(x.price): spec.fmt_qty(x.qty) for x in market.bids(MAX_BOOK_LEVELS)}
        asks = {spec.fmt_price(x.price): spec.fmt_qty(x.qty) for x in market.asks(MAX_BOOK_LEVELS)}
        return bids, asks

    def _depth_diff(self, symbol: str) -> dict[str, Any] | None:
        state = self._books.get(symbol)
        if state is None:
            return None
        market = self.markets[symbol]
        bids, asks = self._levels(market)
        zero = market.spec.fmt_qty(0.0)

        def changes(old: dict[str, str], new: dict[str, str]) -> list[list[str]]:
            out = [[p, q] for p, q in new.items() if old.get(p) != q]
            out.extend([p, zero] for p in old if p not in new)
            return out

        now = self.clock()
        event = {
            "e": "depthUpdate",
            "E": now,
            "T": now,
            "s": symbol,
            "U": state.update_id + 1,
            "u": market.update_id,
            "pu": state.update_id,
            "b": changes(state.bids, bids),
            "a": changes(state.asks, asks),
        }
        self._books[symbol] = _BookState(market.update_id, bids, asks)
        return event

    def _event(self, symbol: str, channel: str) -> dict[str, Any]:
        now = self.clock()
        if channel == "bookTicker":
            top = self.data.book_ticker({"symbol": symbol})
            return {
                "e": "bookTicker",
                "u": top["lastUpdateId"],
                "s": symbol,
                "b": top["bidPrice"],
                "B": top["bidQty"],
                "a": top["askPrice"],
                "A": top["askQty"],
                "T": now,
                "E": now,
            }
        if channel == "markPrice":
            row = self.data.premium_index({"symbol": symbol})
            return {
                "e": "markPriceUpdate",
                "E": now,
                "s": symbol,
                "p": row["markPrice"],
                "i": row["indexPrice"],
                "P": row["estimatedSettlePrice"],
                "r": row["lastFundingRate"],
                "T": row["nextFundingTime"],
            }
        day = self.data.ticker_24hr({"symbol": symbol})
        event = {
            "e": "24hrMiniTicker" if channel == "miniTicker" else "24hrTicker",
            "E": now,
            "s": symbol,
            "c": day["lastPrice"],
            "o": day["openPrice"],
            "h": day["highPrice"],
            "l": day["lowPrice"],
            "v": day["volume"],
            "q": day["quoteVolume"],
        }
        if channel == "ticker":
            event.update(
                {
                    "p": day["priceChange"],
                    "P": day["priceChangePercent"],
                    "w": day["weightedAvgPrice"],
                    "Q": day["lastQty"],
                    "O": day["openTime"],
                    "C": day["closeTime"],
                    "F": day["firstId"],
                    "L": day["lastId"],
                    "n": day["count"],
                }
            )
        return event
