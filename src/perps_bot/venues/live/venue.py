"""The live execution venue: real orders on a real exchange through ccxt's async API.

Design choices, and why:
- Exactly once (venues.live.sending). Every order carries the bot's client id as
  `newClientOrderId` and is sent once; an unknown outcome makes it `unknown` and it is
  looked up by client id until the exchange shows it or its receive window has
  certainly passed; only then may it be sent again. If the exchange cannot be asked,
  the order stays `unknown` and every `poll` looks it up again, so a late-arriving
  order is tracked and its fills are reported.
- Orders arrive already on the instrument's grid: sizes and prices were rounded and
  the minimums checked by `Instrument.prepare` before the order existed, exactly as
  for paper venues, so the venue sends what it is given.
- Errors, retries and the circuit breaker: `venues.live.requests`; redaction of keys
  and error mapping: `venues.live.errors`; replies -> fills and lifecycle steps:
  `venues.live.tracking`.
- This module sends and cancels orders; its mixins poll them for fills
  (`venues.live.polling`) and read the account for reconciliation and recovery
  (`venues.live.reads`).
- Fills come from order status (`fetch_order`), at most every `poll_interval`, and
  from the order's own reply (a market order's reply carries its fill). A fill found on
  arrival reaches the orchestrator at its next `poll`; until then `open_orders()`
  lists the order with the unreported quantity as `remaining`, so the orchestrator's
  in-flight sum never re-sends it.
- Sizes are base units everywhere in the bot; a market whose contract is another
  quantity is sent and read in contracts through `venues.live.contracts`.
- The venue models nothing: no liquidation, no position of its own. The exchange's
  account is the truth; `snapshot()` reads it for reconciliation.
- Leverage is set as a whole number (Binance only takes integers); preflight refuses
  any other, which the ledger would margin at while the exchange does not.
- The venue owns the ccxt client it is given and closes it in `stop()`
  (`close_exchange=False` to keep it).
"""

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any

import ccxt.async_support as ccxt_async

from perps_bot.config.models import AccountConfig, ExchangeConfig
from perps_bot.domain import (
    Candle,
    Fill,
    Instrument,
    MarketEvent,
    Order,
    OrderStatus,
    OrderUpdate,
    close_open,
    transition,
)
from perps_bot.domain.timeutil import parse_duration
from perps_bot.exchange.runtime import close_quietly, wall_clock_ms
from perps_bot.venues.base import (
    OrderRejected,
    TakenAtStart,
    VenueFatal,
    VenueSnapshot,
    VenueUnavailable,
)
from perps_bot.venues.live.commissions import Commissions
from perps_bot.venues.live.conditional import ALGO, algo_view, current_state
from perps_bot.venues.live.contracts import ContractUnits
from perps_bot.venues.live.errors import (
    CCXT_LOG,
    ErrorText,
)
from perps_bot.venues.live.polling import FillPolling
from perps_bot.venues.live.requests import Requests
from perps_bot.venues.live.sending import Look, Sender, StillUnknown
from perps_bot.venues.live.tracking import FINAL_STATUS, Tracked, apply_reply

log = logging.getLogger("perps_bot.venues.live")

_BINANCE_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")


class LiveVenue(FillPolling):
    """Implements the Venue protocol on a ccxt async exchange (private endpoints)."""

    name = "live"
    needs_polling = True

    def __init__(
        self,
        exchange: Any,
        cfg: ExchangeConfig,
        account: AccountConfig,
        instruments: Mapping[str, Instrument],
        *,
        clock: Callable[[], int] = wall_clock_ms,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: float = 0.0,
        seed: int = 0,
        close_exchange: bool = True,
    ) -> None:
        exchange = ContractUnits(exchange)  # base units in, contracts out
        self._exchange = exchange
        self._close_exchange = close_exchange
        self._cfg = cfg
        self._account = account
        self._instruments = dict(instruments)
        self.symbols = list(self._instruments)
        self._clock = clock
        secrets = [s.get_secret_value() for s in (cfg.api_key, cfg.api_secret) if s is not None]
        self._errors = ErrorText(secrets)
        self.requests = Requests(
            exchange, cfg, self._errors, clock, sleep, jitter=jitter, seed=seed
        )
        self.breaker = self.requests.breaker
        self._sender = Sender(
            exchange, self.requests, clock, parse_duration(cfg.recv_window), self._became_unknown
        )
        self._poll_ms = parse_duration(cfg.poll_interval)
        self._ccxt_symbols = {s: i.exchange_symbol for s, i in self._instruments.items()}
        self._orders: dict[str, Tracked] = {}
        self._unconfirmed: dict[str, Tracked] = {}
        self._pending_fills: list[Fill] = []
        self._own_order_ids: set[str] = set()  # every exchange order id this venue placed
        self._seen_trades: set[str] = set()  # foreign trades already handed out
        self._unlisted: dict[str, int] = {}  # see AccountReads._adopted_unlisted
        self._taken: dict[str, TakenAtStart] | None = None  # see AccountReads.taken_at_start
        self._commissions = Commissions(self._instruments)
        self._last_poll: int | None = None
        self._started = False
        self.updates: list[OrderUpdate] = []
        exchange.logger = CCXT_LOG
        #: The snapshot taken at start (reconciliation input for the orchestrator).
        self.last_snapshot: VenueSnapshot | None = None

    # -- status ----------------------------------------------------------------------

    @property
    def circuit_open(self) -> bool:
        """True while the breaker refuses requests (the risk gate then denies orders)."""
        return self.breaker.is_open

    @property
    def reconnects(self) -> int:
        """Grows each time a request succeeds after failed ones: reconcile then."""
        return self.requests.reconnects

    def round_trip_ms(self, client_id: str) -> int | None:
        """The round trip of the order's answered request (ms from its signing to the
        answer, not the waits of the retries before it), taken once; None when it got
        no direct answer (its outcome came from a look-up, or none came)."""
        return self._sender.round_trips.pop(client_id, None)

    def unconfirmed_orders(self) -> list[Order]:
        """Orders whose outcome is still unknown (looked up on every poll)."""
        return [t.order for t in self._unconfirmed.values()]

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Load markets, set leverage and margin mode per symbol, then reconcile.

        Idempotent: a second call does nothing; call `snapshot()` to reconcile again.
        """
        if self._started:
            return
        try:
            await self.requests.request("load markets", self._exchange.load_markets)
        except ccxt_async.BaseError as exc:
            line = self._errors.one_line(exc)
            raise VenueFatal(f"live venue: cannot load markets: {line}") from exc
        markets = self._exchange.markets or {}
        missing = [f"{s} ({c})" for s, c in self._ccxt_symbols.items() if c not in markets]
        if missing:
            raise VenueFatal(f"live venue: the exchange does not list {', '.join(missing)}")
        for symbol, ccxt_symbol in self._ccxt_symbols.items():
            leverage = max(1, int(self._account.leverage_for(symbol)))
            await self.requests.configure(
                f"set leverage {leverage}x on {symbol}",
                partial(self._exchange.set_leverage, leverage, ccxt_symbol),
            )
            mode = self._account.margin_mode.value
            await self.requests.configure(
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
        """Place `order` (already on the instrument's grid) exactly once."""
        ccxt_symbol = self._ccxt_symbols.get(order.symbol)
        if ccxt_symbol is None:
            self._refused(order, f"not sent: {order.symbol} is not traded by this venue")
            raise OrderRejected(None, f"{order.symbol} is not traded by this venue", answered=False)
        tracked = Tracked(order, ccxt_symbol, self._exchange_client_id(order.client_id))
        try:
            reply = await self._sender.place(tracked)
        except (OrderRejected, VenueUnavailable) as refused:
            self._refused(order, str(refused))
            raise
        except StillUnknown as unknown:
            self._unconfirmed[order.client_id] = tracked
            raise VenueUnavailable(str(unknown)) from None
        return self._adopt(tracked, reply, on_arrival=True)

    def _became_unknown(self, tracked: Tracked, why: str) -> None:
        order = tracked.order
        if order.status is OrderStatus.NEW:
            reason = f"outcome unknown ({why}); looking it up"
            self.updates.append(transition(order, OrderStatus.UNKNOWN, self._clock(), reason))

    def _refused(self, order: Order, reason: str) -> None:
        update = close_open(order, OrderStatus.REJECTED, self._clock(), reason)
        if update is not None:
            self.updates.append(update)

    async def cancel(self, client_id: str, ts: int) -> None:
        tracked = self._orders.get(client_id)
        if tracked is not None and not tracked.order.status.is_open:
            return
        if tracked is None:
            tracked = await self._confirm(client_id)
            if tracked is None:
                return
        exchange_id, ccxt_symbol = tracked.order.exchange_id, tracked.ccxt_symbol
        trigger = tracked.order.order_type.is_trigger
        params = ALGO if trigger else {}
        try:
            reply = await self.requests.request(
                f"cancel {client_id}",
                lambda: self._exchange.cancel_order(exchange_id, ccxt_symbol, params),
            )
        except ccxt_async.OrderNotFound:
            # Already filled or cancelled: read its final state for the last fills.
            reply = await current_state(self._exchange, tracked, self.requests.read)
        except ccxt_async.BaseError as exc:
            raise self._errors.rejection(exc) from exc
        if trigger and not FINAL_STATUS.get(str(reply.get("status"))):
            reply = await current_state(self._exchange, tracked, self.requests.read)
        self._apply(tracked, reply, self._clock(), on_arrival=False)

    async def _confirm(self, client_id: str) -> Tracked | None:
        """Settle an unknown order before canceling it: tracked if the exchange has it."""
        pending = self._unconfirmed.get(client_id)
        if pending is None or not await self._settle(pending):
            return None
        return self._orders.get(client_id)

    async def _settle(self, pending: Tracked) -> bool:
        """One look at an order of unknown outcome; True once it is tracked (found)."""
        look = await self._sender.settle(pending)
        if look.state is Look.FOUND and look.reply is not None:
            del self._unconfirmed[pending.order.client_id]
            self._adopt(pending, look.reply, on_arrival=False)
            return True
        if look.state is Look.GONE:
            del self._unconfirmed[pending.order.client_id]
            self._refused(pending.order, "never reached the exchange (receive window passed)")
        return False

    def on_market(self, event: MarketEvent) -> Sequence[Fill]:
        """Live fills come from `poll`; market events change nothing here."""
        return ()

    def on_candle_part(
        self, candle: Candle, since: int, until: int, stamp: int | None
    ) -> Sequence[Fill]:
        """Live fills come from `poll`."""
        return ()

    def on_leg_rest(
        self, candle: Candle, since: int, until: int, stamp: int | None
    ) -> Sequence[Fill]:
        """Live fills come from `poll`."""
        return ()

    def quiet(self, symbol: str) -> bool:
        """Never: a live venue is not simulated (and gets no candle stretches)."""
        return False

    def on_liquidation(self, symbol: str, ts: int, portfolio: str) -> None:
        """Never called on a live run: the exchange liquidates (the ledger does not)."""

    # -- helpers ---------------------------------------------------------------------

    def _exchange_client_id(self, client_id: str) -> str:
        """The client id as Binance accepts it (36 chars of [.A-Za-z0-9:/_-]); ids that do
        not fit are hashed deterministically, so a retry always sends the same id."""
        if _BINANCE_CLIENT_ID.match(client_id):
            return client_id
        digest = hashlib.sha1(client_id.encode()).hexdigest()[:32]
        return f"pb-{digest}"

    def _adopt(self, tracked: Tracked, reply: dict[str, Any], *, on_arrival: bool) -> Order:
        tracked.order.exchange_id = str(reply["id"])
        self._own_order_ids.add(tracked.order.exchange_id)
        self._orders[tracked.order.client_id] = tracked
        self._apply(tracked, reply, self._clock(), on_arrival=on_arrival)
        return tracked.order

    def _apply(self, tracked: Tracked, reply: Any, ts: int, *, on_arrival: bool) -> None:
        instrument = self._instruments[tracked.order.symbol]
        reply = algo_view(tracked, reply)
        if tracked.actual_id is not None:
            self._own_order_ids.add(tracked.actual_id)  # its trades are not foreign
        self._pending_fills.extend(
            apply_reply(tracked, reply, ts, instrument, on_arrival=on_arrival)
        )
        self.updates.extend(tracked.updates)
        tracked.updates.clear()
