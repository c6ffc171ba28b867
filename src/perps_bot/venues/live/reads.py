"""The live venue's reads of the exchange's account (SPEC 8, 9): balance, positions and
open orders for reconciliation (`snapshot`), fills no order of the venue explains
(liquidations, trades placed elsewhere), and one order or its commission looked up
for crash recovery. Reads change no order; an open order found that the venue does
not track yet is tracked from then on.

A mixin of `LiveVenue` (venues.live.venue), kept apart from order submission: the
attributes below are the venue's, declared here for the type checker.
"""

import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from perps_bot.domain import Fill, Order, OrderType, Side
from perps_bot.domain.timeutil import iso_utc
from perps_bot.exchange import from_exchange_symbol
from perps_bot.venues.base import (
    FillsOutOfReach,
    TakenAtStart,
    VenuePosition,
    VenueSnapshot,
    VenueUnavailable,
)
from perps_bot.venues.live.account import (
    PositionMarket,
    foreign_order,
    positions_of,
    wallet_balance,
)
from perps_bot.venues.live.commissions import Commissions
from perps_bot.venues.live.conditional import ALGO, algo_view, current_state
from perps_bot.venues.live.foreign import (
    foreign_client_id,
    foreign_fills,
    liquidation_orders,
)
from perps_bot.venues.live.requests import Requests
from perps_bot.venues.live.sending import Sender
from perps_bot.venues.live.tracking import EPS, Tracked
from perps_bot.venues.live.trade_pages import TRADE_PAGE, forced_since, trades_since

log = logging.getLogger("perps_bot.venues.live")


class AccountReads:
    _exchange: Any
    _ccxt_symbols: dict[str, str]
    _clock: Callable[[], int]
    requests: Requests
    _sender: Sender
    _orders: dict[str, Tracked]
    _unconfirmed: dict[str, Tracked]
    _pending_fills: list[Fill]
    _own_order_ids: set[str]
    _seen_trades: set[str]
    #: symbol -> when an account was adopted whose trades on it could not be listed
    _unlisted: dict[str, int]
    #: exchange client id -> what an order followed when the start took the account had
    #: executed then (None: not taken yet)
    _taken: dict[str, TakenAtStart] | None
    _commissions: Commissions

    def _exchange_client_id(self, client_id: str) -> str:
        raise NotImplementedError

    def _adopt(self, tracked: Tracked, reply: dict[str, Any], *, on_arrival: bool) -> Order:
        raise NotImplementedError

    async def _settle(self, pending: Tracked) -> bool:
        raise NotImplementedError

    async def _reread(self, tracked: Tracked) -> None:
        raise NotImplementedError

    def _apply(self, tracked: Tracked, reply: Any, ts: int, *, on_arrival: bool) -> None:
        raise NotImplementedError

    async def _read_account(self) -> VenueSnapshot:
        """Open orders, balance and non-zero positions from the exchange; open orders
        not yet tracked (e.g. left by a previous run) are tracked from now on. An answer
        that cannot be the account's truth is retried, then VenueUnavailable
        (venues.live.account). `snapshot` (venues.live.polling) reads it in step with
        the orders' fills."""
        read = self.requests.read
        settle = self._settle_asset()

        async def balance() -> float:
            return wallet_balance(await self._exchange.fetch_balance(), settle)

        async def positions() -> list[VenuePosition]:
            rows = await self._exchange.fapiPrivateV3GetPositionRisk()
            return positions_of(rows, self._position_markets())

        # open orders first: an order found open counts what it executed so far as in
        # the positions, so they are read after it (read before, an execution between
        # the two reads was in neither the positions nor any fill)
        open_rows: list[Any] = []
        for ccxt_symbol, params in itertools.product(self._ccxt_symbols.values(), ({}, ALGO)):
            rows = await read(
                f"fetch open orders {ccxt_symbol}",
                partial(self._exchange.fetch_open_orders, ccxt_symbol, None, None, params),
            )
            open_rows.extend(rows or [])
        open_orders = [o for o in (self._open_order(row) for row in open_rows) if o is not None]
        wallet = await read("fetch balance", balance)
        held = await read("fetch positions", positions)
        return VenueSnapshot(wallet, held, open_orders)

    async def exchange_fills(self, since_ms: int, symbols: Sequence[str]) -> list[Fill]:
        """Fills the exchange made since `since_ms` on `symbols` that no order of this
        venue explains: its liquidations (`is_liquidation`) and trades of orders placed
        elsewhere, each once, oldest first (venues.live.foreign). An order of unknown
        outcome is looked up first: its trades carry only its exchange id, which the
        venue learns when it finds it; while one stays unknown, VenueUnavailable (its
        trades would be booked as another order's, and again when it is found)."""
        for pending in list(self._unconfirmed.values()):
            await self._settle(pending)
        if self._unconfirmed:
            raise VenueUnavailable(
                f"{len(self._unconfirmed)} orders of unknown outcome: the exchange's other"
                " fills are read once they are resolved"
            )
        self._adopted_unlisted(since_ms, symbols)
        read = self.requests.read
        found: dict[str, Fill] = {}
        for symbol in symbols:
            ccxt_symbol = self._ccxt_symbols.get(symbol)
            if ccxt_symbol is None:
                continue
            market_id = self._exchange.market(ccxt_symbol)["id"]
            # the trades first: a liquidation's trade read is in the liquidations read
            # after it (read before, one in between was booked as an ordinary trade)
            trades = await self._read_trades(symbol, ccxt_symbol, since_ms)
            last = max((int(t.get("timestamp") or since_ms) for t in trades), default=since_ms)
            forced = await read(
                f"fetch liquidations {symbol}",
                partial(self._liquidations, market_id, since_ms, max(last, self._clock())),
            )
            found |= self._foreign(trades, symbol, forced)
        found = await self._without_triggered(found)
        self._seen_trades.update(found)  # handed out now, once every read succeeded
        return sorted(found.values(), key=lambda f: f.ts)

    async def _without_triggered(self, found: dict[str, Fill]) -> dict[str, Fill]:
        """`found` less the trades of trigger orders that triggered unseen: a trigger
        order's market order is known only once its algo order is read after it
        triggered (venues.live.conditional), so those waiting are read again after the
        trades were (a trade read was made before this read). Before, a stop that
        triggered between the venue's last read and the trades read was booked as
        another order's fill, then again as the stop's once the next poll read it."""
        for tracked in list(self._orders.values()):
            order = tracked.order
            if order.status.is_open and order.order_type.is_trigger and not tracked.actual_id:
                await self._reread(tracked)  # its fills: at the next poll or snapshot
        own = {foreign_client_id(order_id) for order_id in self._own_order_ids}
        return {trade: fill for trade, fill in found.items() if fill.client_id not in own}

    async def _liquidations(self, market_id: str, since_ms: int, until_ms: int) -> dict[str, str]:
        async def fetch(params: dict[str, Any]) -> Any:
            return await self._exchange.fapiPrivateGetForceOrders({"symbol": market_id, **params})

        return liquidation_orders(await forced_since(fetch, since_ms, until_ms))

    async def _trade_ids(self, since_ms: int, symbols: Sequence[str]) -> tuple[set[str], set[str]]:
        """The ids of the account's trades on `symbols` from `since_ms` on (each readable
        as `exchange_fills` reads it: BadResponse retried, then VenueUnavailable), and the
        symbols whose trades are out of its reach (FillsOutOfReach)."""
        ids: set[str] = set()
        unlisted: set[str] = set()
        for symbol in symbols:
            ccxt_symbol = self._ccxt_symbols.get(symbol)
            if ccxt_symbol is None:
                continue
            try:
                trades = await self._read_trades(symbol, ccxt_symbol, since_ms)
            except FillsOutOfReach:
                unlisted.add(symbol)
                continue
            ids.update(str(trade["id"]) for trade in trades)
        return ids, unlisted

    def _adopted_unlisted(self, since_ms: int, symbols: Sequence[str]) -> None:
        """FillsOutOfReach for exchange fills since before the adoption of an account
        whose trades on `symbols` could not be listed (`_unlisted`): those the adopted
        positions hold cannot be told from new ones. Before, they were not marked handed
        out, and a later reconciliation within the look-back that could list them (its
        `since` moved on) booked them again."""
        blind = [s for s in symbols if since_ms < self._unlisted.get(s, since_ms)]
        if blind:
            raise FillsOutOfReach(
                f"{', '.join(blind)}: the trades the start adopted could not all be listed,"
                f" the exchange fills since {iso_utc(since_ms)} cannot be told from them"
            )

    async def _read_trades(self, symbol: str, ccxt_symbol: str, since_ms: int) -> Any:
        """The account's trades on `symbol` from `since_ms` on, read as every exchange
        read is (BadResponse retried, then VenueUnavailable; FillsOutOfReach raised)."""
        return await self.requests.read(
            f"fetch trades {symbol}", partial(self._foreign_trades, symbol, ccxt_symbol, since_ms)
        )

    async def _foreign_trades(self, symbol: str, ccxt_symbol: str, since_ms: int) -> Any:
        """Every trade of the account since `since_ms` (venues.live.trade_pages), each
        readable (BadResponse: retried)."""

        async def fetch(params: dict[str, Any]) -> Any:
            return await self._exchange.fetch_my_trades(ccxt_symbol, None, params["limit"], params)

        trades = await trades_since(fetch, symbol, since_ms, self._clock())
        self._foreign(trades, symbol, {})
        return trades

    def _foreign(self, trades: Any, symbol: str, liquidations: dict[str, str]) -> dict[str, Fill]:
        return foreign_fills(
            trades,
            symbol,
            own_orders=self._own_order_ids,
            seen_trades=self._seen_trades,
            liquidations=liquidations,
            fee_of=partial(self._commissions.of_trade, symbol=symbol, settle=self._settle_asset()),
        )

    async def order_by_client_id(
        self, symbol: str, client_id: str, kind: OrderType = OrderType.MARKET
    ) -> dict[str, Any] | None:
        """The exchange's order with this client id (None: it has none), for recovery,
        which books what it executed so far; a trigger order that triggered answers with
        the market order it became. The venue follows such an order when it was found
        open at the start: from now on it hands out only what the order executes after
        this answer (`_booked_by_recovery`), or, once the start took the account, what
        it executes beyond what the account held then (`taken_at_start`)."""
        ccxt_symbol = self._ccxt_symbols[symbol]
        probe = Tracked(
            Order(client_id, symbol, Side.BUY, 0.0, kind, None, False, 0, client_id),
            ccxt_symbol,
            self._exchange_client_id(client_id),
        )
        found = await self.requests.read(
            f"look up {client_id}", partial(self._sender.lookup, probe)
        )
        if found is not None and found.get("id") is not None:
            probe.order.exchange_id = str(found["id"])
            algo_view(probe, found)
            if probe.actual_id is not None:
                found = await current_state(self._exchange, probe, self.requests.read)
            self._own_order_ids.add(str(found["id"]))  # its trades are not foreign
            self._booked_by_recovery(probe, found)
        return found

    def _booked_by_recovery(self, probe: Tracked, found: dict[str, Any]) -> None:
        """The order the venue follows as `probe` (found open at the start: an earlier
        run's) brought up to `found`, its executions up to there not handed out: recovery
        books them into that run. Before, a stop that triggered between the start's
        account read and recovery's look-up was booked twice, into the earlier run by
        recovery and into this one (against books not adopted yet) by the start's
        reconciliation. Their commission is recovery's to charge too: before, the
        order's next fill here was charged it again. Once the start took the account,
        nothing changes: what the order executed since is this run's (`taken_at_start`)."""
        tracked = next(
            (t for t in self._orders.values() if t.order.exchange_id == probe.order.exchange_id),
            None,
        )
        if tracked is None:
            return
        if probe.actual_id is not None:
            tracked.actual_id = probe.actual_id
        if self._taken is not None:  # beyond what the account taken holds: this run's
            taken = self._taken.get(tracked.exchange_client_id)  # (found by its order id)
            if taken is not None:
                self._taken.setdefault(probe.exchange_client_id, taken)
            return
        self._apply(tracked, found, self._clock(), on_arrival=False)
        client_id = tracked.order.client_id
        self._pending_fills = [f for f in self._pending_fills if f.client_id != client_id]
        # recovery charges their commission too: the next fill here, only its own trades'
        tracked.hand_over_executed()

    def taken_at_start(self, client_id: str) -> TakenAtStart | None:
        """What the order with this client id had executed when the start took the
        account, for one the venue followed then (found open); None for any other, or
        before the account was taken. Recovery books into the earlier run only that
        much: the rest is this run's, handed out by `poll`."""
        if self._taken is None:
            return None
        return self._taken.get(self._exchange_client_id(client_id))

    async def commission_of(
        self, symbol: str, exchange_id: str, executed: float | None = None
    ) -> float | None:
        """The exchange's total commission for one order (its trades), None when unknown:
        a trade unreadable, or (given `executed`, the order's executed quantity) trades
        that do not add up to it yet (listed late, or more than one page holds). Summed
        over part of the trades, the fee booked was short, silently. Given `executed`,
        it is the commission of the first `executed` of them: the order may have
        executed more since it was read (the venue follows an order found open, and
        charges that part with its fills). Before, recovery charged it too."""
        trades = await self.requests.read(
            f"fetch trades of order {exchange_id}",
            partial(
                self._exchange.fetch_my_trades,
                self._ccxt_symbols[symbol],
                None,
                TRADE_PAGE,
                {"orderId": exchange_id},
            ),
        )
        settle = self._settle_asset()
        charged = self._commissions.total(trades, symbol, settle)
        after = (0.0, 0.0) if executed is None else self._commissions.total(
            trades, symbol, settle, executed
        )  # fmt: skip
        if charged is None or after is None:
            return None
        total, quantity = charged[0] - after[0], charged[1]
        if executed is not None and quantity < executed - EPS * max(1.0, executed):
            log.warning("live venue: the trades of order %s add up to %.10g of its %.10g:"
                        " its commission is not known yet", exchange_id, quantity,
                        executed)  # fmt: skip
            return None
        return total

    def _open_order(self, row: Any) -> Order | None:
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
        tracked = foreign_order(row, self._bot_symbol(str(row.get("symbol"))), self._clock())
        self._orders[tracked.order.client_id] = tracked
        # followed from now on, its fills come from its status: its trades are not foreign
        self._own_order_ids.add(str(row["id"]))
        log.info("reconciled open order %s (%s %s)", exchange_cid, tracked.order.side,
                 tracked.order.symbol)  # fmt: skip
        return replace(tracked.order)

    def _position_markets(self) -> dict[str, PositionMarket]:
        """Exchange market id -> the bot's symbol and contract size, for positionRisk."""
        found: dict[str, PositionMarket] = {}
        for symbol, ccxt_symbol in self._ccxt_symbols.items():
            market = self._exchange.market(ccxt_symbol)
            found[str(market["id"])] = PositionMarket(symbol, market.get("contractSize") or 1.0)
        return found

    def _settle_asset(self) -> str:
        markets = self._exchange.markets or {}
        for ccxt_symbol in self._ccxt_symbols.values():
            market = markets.get(ccxt_symbol)
            if isinstance(market, dict) and market.get("settle"):
                return str(market["settle"])
        return "USDT"

    def _bot_symbol(self, ccxt_symbol: str) -> str:
        for symbol, mapped in self._ccxt_symbols.items():
            if mapped == ccxt_symbol:
                return symbol
        try:
            return from_exchange_symbol(ccxt_symbol, self._ccxt_symbols)
        except Exception:  # an unmapped symbol: report it under the exchange's name
            return ccxt_symbol
