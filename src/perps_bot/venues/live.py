"""The live execution venue: real orders on a real exchange through ccxt's async API.

Design choices, and why:
- Idempotent submission. Every order carries the bot's client id as
  `newClientOrderId`. When sending fails in a way that leaves its fate unknown
  (timeout, network error, 5xx, garbled reply) the venue backs off and first looks
  the order up by client id; it resends only when the exchange says the order does
  not exist. So a retried order is never placed twice. If the venue gives up
  (retries exhausted, breaker open) while the fate is still unknown, the order is
  kept as "unconfirmed" and every `poll` looks it up again, so a late-arriving order
  is tracked and its fills are reported instead of being forgotten.
- Errors are mapped by ccxt class (SPEC 4): network and rate-limit errors are
  retried with exponential backoff and, when retries run out, become
  `VenueUnavailable`; rejections become `OrderRejected` with a risk-style reason
  code; authentication errors become `VenueFatal` (stop the bot). Binance error
  codes are also read from the message as a fallback, because ccxt picks its
  futures error table by URL and a proxied base URL can hide the class.
- A circuit breaker counts consecutive failed requests; while open, `submit`
  raises `VenueUnavailable` at once and `poll` does nothing, so an outage pauses
  trading instead of hammering the exchange. A success after failures closes it
  and bumps `reconnects`, which tells the orchestrator to reconcile (`snapshot`).
- Sizes are rounded DOWN to the step size (never trade more than approved) and
  limit prices to the tick on the passive side (a buy never pays more, a sell never
  receives less than asked). Rounding goes through Decimal so that e.g. 0.3 / 0.1
  does not floor to 2 steps; everything else stays float like the domain.
  Orders under the market's minimum quantity or minimum notional are rejected
  before anything is sent (reduce-only orders are exempt from the notional
  minimum, as on Binance).
- Fills come from order status (`fetch_order`), at most every `poll_interval`:
  the newly executed quantity since the last look becomes one Fill, priced from
  the change in cumulative quote cost. Binance order replies carry no commission,
  so the fee is estimated from `FeesConfig` (default taker 5 bps, maker 2 bps):
  taker for market orders and for limit orders that filled on arrival, maker for
  limit fills found later. When the exchange reports a fee, that is used.
- The venue owns the ccxt client it is given and closes it in `stop()`
  (`close_exchange=False` to keep it).
- A fill found on arrival (market orders) reaches the ledger only at the next
  `poll`; until then `open_orders()` still lists the order with the unreported
  quantity as `remaining`, so the orchestrator's in-flight sum never re-sends it.
- Leverage is set as a whole number (Binance only takes integers): 2.5 -> 2x.
- Keys are never logged: the venue logs one-line error summaries with the API key,
  secret and request signatures redacted, and points its ccxt client's `logger`
  (ccxt logs every request with its headers, X-MBX-APIKEY included, at DEBUG) at a
  logger whose filter blanks them.
"""

import asyncio
import contextlib
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import partial
from typing import Any, TypeVar

import ccxt.async_support as ccxt_async

from perps_bot.config.models import AccountConfig, ExchangeConfig, FeesConfig
from perps_bot.domain import (
    BookSnapshot,
    Candle,
    DenialReason,
    Fill,
    Liquidity,
    MarketEvent,
    MarkPrice,
    Order,
    OrderStatus,
    OrderType,
    Quote,
    Side,
)
from perps_bot.domain.timeutil import parse_duration
from perps_bot.exchange import from_exchange_symbol, to_exchange_symbol
from perps_bot.feeds.exchange import close_quietly, wall_clock_ms
from perps_bot.venues.base import (
    OrderRejected,
    VenueFatal,
    VenuePosition,
    VenueSnapshot,
    VenueUnavailable,
)
from perps_bot.venues.resilience import Backoff, CircuitBreaker

log = logging.getLogger(__name__)


class _RedactSecrets(logging.Filter):
    """Blanks API keys, secrets and request signatures out of ccxt's log records.

    ccxt logs every request at DEBUG with its headers, and binance sends the API key in
    the X-MBX-APIKEY header: with `--log-level DEBUG` the key would reach the log file.
    The venue points its client's `logger` at this module's redacting logger.
    """

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        redacted = redact(text, self.secrets)
        if redacted != text:
            record.msg, record.args = redacted, None
        return True


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret and request signature replaced by ***."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return _SIGNATURE.sub(r"\1***", text)


_REDACTOR = _RedactSecrets()
#: The logger the venue's ccxt client writes to (its request/response DEBUG lines).
CCXT_LOG = logging.getLogger(f"{__name__}.ccxt")
CCXT_LOG.addFilter(_REDACTOR)

T = TypeVar("T")

#: The request may or may not have reached the exchange; retry (idempotently).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ccxt_async.NetworkError,
    ccxt_async.OperationFailed,
)
#: The credentials are wrong or lack permissions: nothing will work.
FATAL_ERRORS: tuple[type[BaseException], ...] = (ccxt_async.AuthenticationError,)

_BINANCE_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_CODE_IN_MESSAGE = re.compile(r'"code"\s*:\s*(-?\d+)')
_SIGNATURE = re.compile(r"(signature=)[0-9a-zA-Z]+")
_EPS = 1e-12

_STATUS = {
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "rejected": OrderStatus.REJECTED,
    "expired": OrderStatus.EXPIRED,
}


class _UnknownOutcome(Exception):
    """create_order returned, but not a usable order: treat like a timeout."""


#: Failures after which an order may or may not exist: look it up before resending.
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, _UnknownOutcome)
#: Errors that say nothing about an order's existence (used by the lookup).
_NOT_AN_ANSWER: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, *FATAL_ERRORS)


@dataclass(slots=True)
class _Tracked:
    """An order the venue watches for fills, and how much of it was reported already."""

    order: Order
    ccxt_symbol: str
    exchange_client_id: str
    seen_filled: float = 0.0  # executed quantity already turned into Fill objects
    seen_cost: float = 0.0
    seen_fee: float = 0.0
    reported: float = 0.0  # quantity of those fills already handed out by poll()

    @property
    def unreported(self) -> float:
        return self.seen_filled - self.reported

    @property
    def finished(self) -> bool:
        """Closed on the exchange and every fill handed out: nothing left to track."""
        return not self.order.status.is_open and self.unreported <= _EPS


class LiveVenue:
    """Implements the Venue protocol on a ccxt async exchange (private endpoints)."""

    name = "live"
    needs_polling = True

    def __init__(
        self,
        exchange: Any,
        cfg: ExchangeConfig,
        account: AccountConfig,
        symbols: list[str],
        *,
        fees: FeesConfig | None = None,
        clock: Callable[[], int] = wall_clock_ms,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: float = 0.0,
        seed: int = 0,
        close_exchange: bool = True,
    ) -> None:
        self._exchange = exchange
        self._close_exchange = close_exchange
        self._cfg = cfg
        self._account = account
        self.symbols = list(symbols)
        self._fees = fees or FeesConfig()
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._seed = seed
        self._base_ms = parse_duration(cfg.backoff_base)
        self._max_ms = max(parse_duration(cfg.backoff_max), self._base_ms)
        self._poll_ms = parse_duration(cfg.poll_interval)
        self.breaker = CircuitBreaker(
            cfg.breaker_failures, parse_duration(cfg.breaker_cooldown), clock
        )
        self._ccxt_symbols = {s: to_exchange_symbol(s, cfg.symbol_map) for s in self.symbols}
        self._orders: dict[str, _Tracked] = {}
        self._unconfirmed: dict[str, _Tracked] = {}
        self._pending_fills: list[Fill] = []
        self._ref_price: dict[str, float] = {}
        self._last_poll: int | None = None
        self._failing = False
        self._started = False
        self._secrets = [
            s.get_secret_value()
            for s in (cfg.api_key, cfg.api_secret)
            if s is not None and s.get_secret_value()
        ]
        _REDACTOR.secrets.update(self._secrets)
        exchange.logger = CCXT_LOG
        #: Incremented each time a request succeeds after failed ones: reconcile then.
        self.reconnects = 0
        #: The snapshot taken at start (reconciliation input for the orchestrator).
        self.last_snapshot: VenueSnapshot | None = None

    # -- status ----------------------------------------------------------------------

    @property
    def circuit_open(self) -> bool:
        """True while the breaker refuses requests (the risk gate then denies orders)."""
        return self.breaker.is_open

    def unconfirmed_orders(self) -> list[Order]:
        """Orders whose submission outcome is still unknown (looked up on every poll)."""
        return [t.order for t in self._unconfirmed.values()]

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Load markets, set leverage and margin mode per symbol, then reconcile.

        Idempotent: a second call (the runner and the engine may both call it) does
        nothing; call `snapshot()` to reconcile again.
        """
        if self._started:
            return
        try:
            await self._request("load markets", self._exchange.load_markets)
        except ccxt_async.BaseError as exc:
            raise VenueFatal(f"live venue: cannot load markets: {self._one_line(exc)}") from exc
        markets = self._exchange.markets or {}
        missing = [f"{s} ({c})" for s, c in self._ccxt_symbols.items() if c not in markets]
        if missing:
            raise VenueFatal(f"live venue: the exchange does not list {', '.join(missing)}")
        for symbol, ccxt_symbol in self._ccxt_symbols.items():
            leverage = max(1, int(self._account.leverage_for(symbol)))
            await self._configure(
                f"set leverage {leverage}x on {symbol}",
                partial(self._exchange.set_leverage, leverage, ccxt_symbol),
            )
            mode = self._account.margin_mode.value
            await self._configure(
                f"set {mode} margin on {symbol}",
                partial(self._exchange.set_margin_mode, mode, ccxt_symbol),
            )
        self.last_snapshot = await self.snapshot()
        self._started = True
        log.info(
            "live venue started: %d symbols, balance %s, %d positions, %d open orders",
            len(self.symbols),
            self.last_snapshot.balance,
            len(self.last_snapshot.positions),
            len(self.last_snapshot.open_orders),
        )

    async def stop(self) -> None:
        """Close the ccxt client (the venue owns it unless `close_exchange=False`).
        Open orders are left on the exchange; the next start reconciles them."""
        working = self._working()
        if working or self._unconfirmed:
            log.info(
                "live venue stopping with %d open and %d unconfirmed orders left on the exchange",
                len(working),
                len(self._unconfirmed),
            )
        if self._close_exchange:
            await close_quietly(self._exchange)

    # -- orders ----------------------------------------------------------------------

    async def submit(self, order: Order) -> Order:
        if not self.breaker.allow():
            raise VenueUnavailable(self._breaker_message("order not sent"))
        prepared, ccxt_symbol = await self._prepare(order)
        exchange_cid = self._exchange_client_id(order.client_id)
        tracked = _Tracked(prepared, ccxt_symbol, exchange_cid)
        params: dict[str, Any] = {"newClientOrderId": exchange_cid}
        if prepared.reduce_only:
            params["reduceOnly"] = True
        order_type = "limit" if prepared.order_type is OrderType.LIMIT else "market"
        backoff = self._backoff()
        maybe_sent = False
        last_error = "no attempt made"
        for attempt in range(self._cfg.max_retries + 1):
            if attempt > 0:
                await self._sleep(backoff.next_delay_ms() / 1000.0)
                if not self.breaker.allow():
                    last_error = self._breaker_message("gave up")
                    break
            try:
                if maybe_sent:
                    found = await self._lookup(tracked)
                    if found is not None:
                        log.info(
                            "order %s was accepted despite the error; not resending",
                            order.client_id,
                        )
                        self._succeeded()
                        return self._adopt(tracked, found, on_arrival=True)
                maybe_sent = True
                reply = await self._exchange.create_order(
                    ccxt_symbol,
                    order_type,
                    prepared.side.value,
                    prepared.size,
                    prepared.price,
                    params,
                )
                if not isinstance(reply, dict) or not reply.get("id"):
                    raise _UnknownOutcome("create_order reply has no order id")
            except RETRYABLE_ERRORS as exc:
                last_error = self._failed(f"submit {order.client_id}", exc)
                continue
            except FATAL_ERRORS as exc:
                raise self._fatal(exc) from exc
            except ccxt_async.BaseError as exc:
                self._succeeded()
                raise self._rejection(exc) from exc
            self._succeeded()
            return self._adopt(tracked, reply, on_arrival=True)
        if maybe_sent:
            self._unconfirmed[order.client_id] = tracked
        raise VenueUnavailable(f"order {order.client_id} not confirmed: {last_error}")

    async def cancel(self, client_id: str) -> None:
        tracked = self._orders.get(client_id)
        if tracked is not None and not tracked.order.status.is_open:
            return
        if tracked is None:
            tracked = await self._confirm(client_id)
            if tracked is None:
                return
        exchange_id, ccxt_symbol = tracked.order.exchange_id, tracked.ccxt_symbol
        try:
            reply = await self._request(
                f"cancel {client_id}",
                lambda: self._exchange.cancel_order(exchange_id, ccxt_symbol),
            )
        except ccxt_async.OrderNotFound:
            # Already filled or cancelled: read its final state for the last fills.
            reply = await self._read(
                f"fetch {client_id}", lambda: self._exchange.fetch_order(exchange_id, ccxt_symbol)
            )
        except ccxt_async.BaseError as exc:
            raise self._rejection(exc) from exc
        self._update(tracked, reply, self._clock(), on_arrival=False)

    async def _confirm(self, client_id: str) -> _Tracked | None:
        """Resolve an unconfirmed order: tracked if it exists on the exchange, else dropped."""
        pending = self._unconfirmed.get(client_id)
        if pending is None:
            return None
        found = await self._read(f"look up {client_id}", lambda: self._lookup(pending))
        del self._unconfirmed[client_id]
        if found is None:
            return None
        self._adopt(pending, found, on_arrival=False)
        return self._orders.get(client_id)

    def on_market(self, event: MarketEvent) -> Sequence[Fill]:
        """Live fills come from `poll`; market events only refresh reference prices."""
        price: float | None = None
        if isinstance(event, BookSnapshot):
            if event.bids and event.asks:
                price = (event.bids[0][0] + event.asks[0][0]) / 2.0
            else:
                price = event.last
        elif isinstance(event, Quote):
            price = event.last
        elif isinstance(event, Candle):
            price = event.close
        elif isinstance(event, MarkPrice):
            price = event.mark
        if price is not None and price > 0:
            self._ref_price[event.symbol] = price
        return ()

    async def poll(self, now_ms: int) -> Sequence[Fill]:
        """New fills since the last call. Requests go out at most every poll_interval;
        network errors are logged, never raised: the next poll tries again
        (`circuit_open` and `reconnects` report the outage)."""
        due = self._last_poll is None or now_ms - self._last_poll >= self._poll_ms
        if due and not self.breaker.is_open and (self._unconfirmed or self._working()):
            self._last_poll = now_ms
            with contextlib.suppress(_Skip):  # the exchange is failing: try next poll
                await self._refresh(now_ms)
        fills, self._pending_fills = self._pending_fills, []
        for fill in fills:
            tracked = self._orders.get(fill.client_id)
            if tracked is not None:
                tracked.reported += fill.size
        for client_id in [cid for cid, t in self._orders.items() if t.finished]:
            del self._orders[client_id]
        return fills

    async def _refresh(self, now_ms: int) -> None:
        for client_id, pending in list(self._unconfirmed.items()):
            found = await self._once(f"look up {client_id}", partial(self._lookup, pending))
            del self._unconfirmed[client_id]
            if found is not None:
                log.info("unconfirmed order %s found on the exchange; tracking it", client_id)
                self._adopt(pending, found, on_arrival=False)
        for tracked in self._working():
            try:
                reply = await self._once(
                    f"fetch {tracked.order.client_id}",
                    partial(
                        self._exchange.fetch_order, tracked.order.exchange_id, tracked.ccxt_symbol
                    ),
                )
            except _Skip as skip:
                if skip.transient:
                    raise
                continue
            if not isinstance(reply, dict) or not reply.get("id"):
                log.warning("live venue: unusable order status for %s", tracked.order.client_id)
                continue
            self._update(tracked, reply, now_ms, on_arrival=False)

    def _working(self) -> list[_Tracked]:
        return [t for t in self._orders.values() if t.order.status.is_open]

    def open_orders(self) -> list[Order]:
        """Orders still in flight from the bot's point of view: open on the exchange, or
        closed with fills that `poll` has not handed out yet (a market order fills on
        arrival, but the ledger only learns it at the next poll). In these copies
        `filled` is the quantity already reported and, for closed orders, `size` is the
        executed total, so `remaining` is exactly what may still reach the ledger.
        Unconfirmed orders are included with their full size."""
        in_flight: list[Order] = []
        for tracked in self._orders.values():
            if tracked.finished:
                continue
            copy = replace(tracked.order, filled=tracked.reported)
            if not tracked.order.status.is_open:
                copy.size = tracked.seen_filled
            in_flight.append(copy)
        # Unknown fate: count them as in flight, so nobody re-sends their quantity.
        in_flight.extend(replace(t.order) for t in self._unconfirmed.values())
        return in_flight

    async def snapshot(self) -> VenueSnapshot:
        """Balance, non-zero positions and open orders from the exchange; open orders
        not yet tracked (e.g. left by a previous run) are tracked from now on."""
        ccxt_symbols = list(self._ccxt_symbols.values())
        balance_reply = await self._read("fetch balance", self._exchange.fetch_balance)
        position_rows = await self._read(
            "fetch positions", lambda: self._exchange.fetch_positions(ccxt_symbols)
        )
        open_rows: list[Any] = []
        for ccxt_symbol in ccxt_symbols:
            rows = await self._read(
                f"fetch open orders {ccxt_symbol}",
                partial(self._exchange.fetch_open_orders, ccxt_symbol),
            )
            open_rows.extend(rows or [])
        positions = [p for p in (self._position(r) for r in position_rows or []) if p is not None]
        open_orders: list[Order] = []
        for row in open_rows:
            order = self._reconcile_open_order(row)
            if order is not None:
                open_orders.append(order)
        return VenueSnapshot(self._balance(balance_reply), positions, open_orders)

    # -- submit helpers --------------------------------------------------------------

    async def _prepare(self, order: Order) -> tuple[Order, str]:
        """Round to the market's steps and check its minimums, before anything is sent."""
        ccxt_symbol = self._ccxt_symbols.get(order.symbol)
        if ccxt_symbol is None:
            raise OrderRejected(None, f"{order.symbol} is not traded by this venue")
        market = self._exchange.market(ccxt_symbol)
        step = self._precision(market, "amount")
        tick = self._precision(market, "price")
        size = _round_to(order.size, step, ROUND_FLOOR) if step else order.size
        price = order.price
        if order.order_type is OrderType.LIMIT:
            if price is None or price <= 0:
                raise OrderRejected(None, f"limit order {order.client_id} has no valid price")
            if tick:
                mode = ROUND_FLOOR if order.side is Side.BUY else ROUND_CEILING
                price = _round_to(price, tick, mode)
        else:
            price = None
        limits = market.get("limits") or {}
        min_qty = _num((limits.get("amount") or {}).get("min")) or 0.0
        if size <= 0 or size < min_qty - _EPS:
            raise OrderRejected(
                None,
                f"{order.symbol} size {order.size:g} rounds to {size:g}, "
                f"below the minimum quantity {min_qty:g}",
            )
        min_notional = _num((limits.get("cost") or {}).get("min")) or 0.0
        if min_notional > 0 and not order.reduce_only:
            ref = price if price is not None else await self._reference_price(order.symbol)
            if ref is not None and size * ref < min_notional - _EPS:
                raise OrderRejected(
                    None,
                    f"{order.symbol} notional {size * ref:.4f} is below the exchange "
                    f"minimum {min_notional:g}",
                )
        return replace(order, size=size, price=price), ccxt_symbol

    def _precision(self, market: dict[str, Any], key: str) -> float | None:
        value = _num((market.get("precision") or {}).get(key))
        if value is None or value <= 0:
            return None
        if getattr(self._exchange, "precisionMode", None) == ccxt_async.DECIMAL_PLACES:
            return float(10.0 ** (-int(value)))
        return value

    async def _reference_price(self, symbol: str) -> float | None:
        price = self._ref_price.get(symbol)
        if price is not None:
            return price
        ticker = await self._read(
            f"fetch ticker {symbol}",
            lambda: self._exchange.fetch_ticker(self._ccxt_symbols[symbol]),
        )
        last = _num(ticker.get("last")) if isinstance(ticker, dict) else None
        if last is not None and last > 0:
            self._ref_price[symbol] = last
        return last

    def _exchange_client_id(self, client_id: str) -> str:
        """The client id as Binance accepts it (36 chars of [.A-Za-z0-9:/_-]); ids that do
        not fit are hashed deterministically, so a retry always sends the same id."""
        if _BINANCE_CLIENT_ID.match(client_id):
            return client_id
        digest = hashlib.sha1(client_id.encode()).hexdigest()[:32]
        return f"pb-{digest}"

    async def _lookup(self, tracked: _Tracked) -> dict[str, Any] | None:
        """The order with this client id on the exchange, or None if it does not exist."""
        try:
            found = await self._exchange.fetch_order(
                None, tracked.ccxt_symbol, {"origClientOrderId": tracked.exchange_client_id}
            )
        except ccxt_async.OrderNotFound:
            self.breaker.record_success()  # reachable; the caller counts the reconnect
            return None
        except _NOT_AN_ANSWER:
            raise
        except ccxt_async.BaseError as exc:
            # Any other answer does not prove the order is absent: stay unsure.
            raise _UnknownOutcome(f"order lookup failed: {self._one_line(exc)}") from exc
        if not isinstance(found, dict) or not found.get("id"):
            raise _UnknownOutcome("order lookup reply has no order id")
        self.breaker.record_success()
        return found

    def _adopt(self, tracked: _Tracked, reply: dict[str, Any], *, on_arrival: bool) -> Order:
        tracked.order.exchange_id = str(reply["id"])
        self._orders[tracked.order.client_id] = tracked
        self._update(tracked, reply, self._clock(), on_arrival=on_arrival)
        return replace(tracked.order)

    def _update(self, tracked: _Tracked, reply: Any, ts: int, *, on_arrival: bool) -> None:
        """Turn the order's cumulative state into a Fill for the new part; forget it when done."""
        if not isinstance(reply, dict):
            return
        order = tracked.order
        filled = max(_num(reply.get("filled")) or 0.0, tracked.seen_filled)  # never backwards
        average = _num(reply.get("average")) or 0.0
        cost = _num(reply.get("cost"))
        if cost is None or cost <= 0:
            cost = filled * average
        delta = filled - tracked.seen_filled
        if delta > _EPS * max(1.0, filled):
            delta_cost = cost - tracked.seen_cost
            if tracked.seen_filled <= _EPS and average > 0:
                price = average  # the whole fill so far: the exchange's exact average
            elif delta_cost > 0:
                price = delta_cost / delta
            else:
                price = average or (order.price or 0.0)
            liquidity = (
                Liquidity.TAKER
                if order.order_type is OrderType.MARKET or on_arrival
                else Liquidity.MAKER
            )
            fee = self._fee(reply, tracked, delta * price, liquidity)
            self._pending_fills.append(
                Fill(
                    ts=ts,
                    symbol=order.symbol,
                    side=order.side,
                    size=delta,
                    price=price,
                    fee=fee,
                    liquidity=liquidity,
                    client_id=order.client_id,
                    correlation_id=order.correlation_id,
                    reason=order.reason,
                    stop_price=order.stop_price,
                )
            )
            tracked.seen_filled = filled
            tracked.seen_cost = cost
        order.filled = filled
        if filled > 0 and average > 0:
            order.avg_price = average
        status = str(reply.get("status") or "")
        if status in _STATUS:
            order.status = _STATUS[status]
        elif filled > _EPS:
            order.status = OrderStatus.PARTIALLY_FILLED
        else:
            order.status = OrderStatus.NEW

    def _fee(
        self, reply: dict[str, Any], tracked: _Tracked, notional: float, liquidity: Liquidity
    ) -> float:
        fee_info = reply.get("fee")
        reported = _num(fee_info.get("cost")) if isinstance(fee_info, dict) else None
        if reported is not None:
            fee = reported - tracked.seen_fee
            tracked.seen_fee = reported
            return fee
        bps = self._fees.taker_bps if liquidity is Liquidity.TAKER else self._fees.maker_bps
        return notional * bps / 10_000.0

    # -- snapshot helpers ------------------------------------------------------------

    def _balance(self, reply: Any) -> float | None:
        """Wallet balance of the settlement asset (excludes unrealized PnL, like the ledger)."""
        if not isinstance(reply, dict):
            return None
        settle = self._settle_asset()
        info = reply.get("info")
        assets = info.get("assets") if isinstance(info, dict) else None
        if isinstance(assets, list):
            for row in assets:
                if isinstance(row, dict) and row.get("asset") == settle:
                    wallet = _num(row.get("walletBalance"))
                    if wallet is not None:
                        return wallet
        entry = reply.get(settle)
        return _num(entry.get("total")) if isinstance(entry, dict) else None

    def _settle_asset(self) -> str:
        markets = self._exchange.markets or {}
        for ccxt_symbol in self._ccxt_symbols.values():
            market = markets.get(ccxt_symbol)
            if isinstance(market, dict) and market.get("settle"):
                return str(market["settle"])
        return "USDT"

    def _position(self, row: Any) -> VenuePosition | None:
        if not isinstance(row, dict):
            return None
        contracts = _num(row.get("contracts")) or 0.0
        if abs(contracts) <= _EPS:
            return None
        size = contracts * (_num(row.get("contractSize")) or 1.0)
        side = str(row.get("side") or "").lower()
        short = side == "short" or (side != "long" and size < 0)
        size = -abs(size) if short else abs(size)
        entry = _num(row.get("entryPrice")) or 0.0
        return VenuePosition(self._bot_symbol(str(row.get("symbol"))), size, entry)

    def _reconcile_open_order(self, row: Any) -> Order | None:
        if not isinstance(row, dict) or not row.get("id"):
            return None
        exchange_cid = str(row.get("clientOrderId") or row["id"])
        for tracked in self._orders.values():
            if tracked.order.exchange_id == str(row["id"]):
                return replace(tracked.order)
        for client_id, pending in list(self._unconfirmed.items()):
            if pending.exchange_client_id == exchange_cid:
                del self._unconfirmed[client_id]
                self._adopt(pending, row, on_arrival=False)
                return replace(pending.order)
        ccxt_symbol = str(row.get("symbol"))
        symbol = self._bot_symbol(ccxt_symbol)
        side = Side.BUY if str(row.get("side")).lower() == "buy" else Side.SELL
        is_limit = str(row.get("type")).lower() == "limit"
        filled = _num(row.get("filled")) or 0.0
        average = _num(row.get("average")) or 0.0
        order = Order(
            client_id=exchange_cid,
            symbol=symbol,
            side=side,
            size=_num(row.get("amount")) or 0.0,
            order_type=OrderType.LIMIT if is_limit else OrderType.MARKET,
            price=_num(row.get("price")) if is_limit else None,
            reduce_only=bool(row.get("reduceOnly")),
            created_ts=int(_num(row.get("timestamp")) or self._clock()),
            correlation_id=exchange_cid,
            reason="reconciled",
            status=OrderStatus.PARTIALLY_FILLED if filled > _EPS else OrderStatus.NEW,
            filled=filled,
            avg_price=average,
            exchange_id=str(row["id"]),
        )
        # Fills before this point belong to the position the snapshot already shows.
        cost = _num(row.get("cost")) or filled * average
        self._orders[order.client_id] = _Tracked(
            order, ccxt_symbol, exchange_cid, seen_filled=filled, seen_cost=cost, reported=filled
        )
        log.info("reconciled open order %s (%s %s)", exchange_cid, side.value, symbol)
        return replace(order)

    def _bot_symbol(self, ccxt_symbol: str) -> str:
        for symbol, mapped in self._ccxt_symbols.items():
            if mapped == ccxt_symbol:
                return symbol
        try:
            return from_exchange_symbol(ccxt_symbol, self._cfg.symbol_map)
        except Exception:  # an unmapped symbol: report it under the exchange's name
            return ccxt_symbol

    # -- request plumbing ------------------------------------------------------------

    def _backoff(self) -> Backoff:
        return Backoff(self._base_ms, self._max_ms, jitter=self._jitter, seed=self._seed)

    async def _request(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run a read or a setting change, retrying transient errors with backoff.

        Raises VenueUnavailable when retries run out or the breaker is open, VenueFatal
        on authentication errors; other ccxt errors propagate for the caller to map.
        """
        backoff = self._backoff()
        last_error = "no attempt made"
        for attempt in range(self._cfg.max_retries + 1):
            if attempt > 0:
                await self._sleep(backoff.next_delay_ms() / 1000.0)
            if not self.breaker.allow():
                raise VenueUnavailable(self._breaker_message(f"{what} not sent"))
            try:
                result = await call()
            except RETRYABLE_ERRORS as exc:
                last_error = self._failed(what, exc)
                continue
            except FATAL_ERRORS as exc:
                raise self._fatal(exc) from exc
            except ccxt_async.BaseError:
                self._succeeded()
                raise
            self._succeeded()
            return result
        raise VenueUnavailable(
            f"{what} failed after {self._cfg.max_retries + 1} tries: {last_error}"
        )

    async def _read(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """`_request` for reads: an exchange error that is not a rejection of ours
        (malformed reply, unknown error) also becomes VenueUnavailable."""
        try:
            return await self._request(what, call)
        except ccxt_async.BaseError as exc:
            raise VenueUnavailable(f"{what} failed: {self._one_line(exc)}") from exc

    async def _once(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """One attempt, for polling. A transient failure raises _Skip (the rest of this
        poll is abandoned); any other exchange error raises _Skip(transient=False)."""
        if not self.breaker.allow():
            raise _Skip()
        try:
            result = await call()
        except RETRYABLE_ERRORS as exc:
            self._failed(what, exc)
            raise _Skip() from exc
        except FATAL_ERRORS as exc:
            raise self._fatal(exc) from exc
        except ccxt_async.BaseError as exc:
            self._succeeded()
            log.warning("live venue: %s: %s", what, self._one_line(exc))
            raise _Skip(transient=False) from exc
        self._succeeded()
        return result

    async def _configure(self, what: str, call: Callable[[], Awaitable[Any]]) -> None:
        try:
            await self._request(what, call)
        except (VenueUnavailable, VenueFatal):
            raise
        except ccxt_async.MarginModeAlreadySet:
            return
        except ccxt_async.BaseError as exc:
            text = str(exc).lower()
            if "no need to change" in text or "-4046" in text or "-4059" in text:
                return
            raise VenueFatal(f"live venue: cannot {what}: {self._one_line(exc)}") from exc

    def _failed(self, what: str, exc: BaseException) -> str:
        self.breaker.record_failure()
        self._failing = True
        line = self._one_line(exc)
        state = " (circuit breaker open)" if self.breaker.is_open else ""
        log.warning("live venue: %s failed: %s%s", what, line, state)
        return line

    def _succeeded(self) -> None:
        if self._failing:
            self._failing = False
            self.reconnects += 1
            log.info("live venue: exchange reachable again (reconnect #%d)", self.reconnects)
        self.breaker.record_success()

    def _breaker_message(self, what: str) -> str:
        left = self.breaker.remaining_cooldown_ms()
        return f"circuit breaker open ({left} ms of cooldown left); {what}"

    def _rejection(self, exc: BaseException) -> OrderRejected:
        """Map an exchange refusal onto a risk-style denial."""
        line = self._one_line(exc)
        code = _binance_code(str(exc))
        text = str(exc).lower()
        if isinstance(exc, ccxt_async.InsufficientFunds) or code == -2019:
            return OrderRejected(DenialReason.INSUFFICIENT_MARGIN, line)
        if (isinstance(exc, ccxt_async.InvalidOrder) and "reduce" in text) or code == -2022:
            return OrderRejected(DenialReason.REDUCE_ONLY_VIOLATION, line)
        return OrderRejected(None, line)

    def _fatal(self, exc: BaseException) -> VenueFatal:
        return VenueFatal(
            "exchange refused the API credentials or permissions "
            f"({self._one_line(exc)}); check PERPS_BOT__EXCHANGE__API_KEY / _API_SECRET"
        )

    def _one_line(self, exc: BaseException, limit: int = 300) -> str:
        text = redact(" ".join(str(exc).split()), self._secrets)
        if len(text) > limit:
            text = text[: limit - 3] + "..."
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Skip(Exception):
    """Abandon a poll step. Transient: the exchange is failing, stop this poll; the next
    poll retries. Not transient: this one request was refused; go on with the others."""

    def __init__(self, *, transient: bool = True) -> None:
        super().__init__()
        self.transient = transient


def _binance_code(message: str) -> int | None:
    match = _CODE_IN_MESSAGE.search(message)
    return int(match.group(1)) if match else None


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _round_to(value: float, step: float, rounding: str) -> float:
    """`value` rounded to a multiple of `step` (Decimal: 0.3 is 3 steps of 0.1, not 2)."""
    steps = (Decimal(repr(value)) / Decimal(repr(step))).to_integral_value(rounding=rounding)
    return float(steps * Decimal(repr(step)))
