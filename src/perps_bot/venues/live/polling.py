"""The live venue's fills (SPEC 8): order status polled at most every `poll_interval`
(orders of unknown outcome looked up again first), the exchange's commissions put in
place of estimated fees, and the orders still in flight as the orchestrator must see
them so it never re-sends a quantity the exchange may still fill.

A mixin of `LiveVenue` (venues.live.venue), kept apart from order submission: the
attributes below are the venue's, declared here for the type checker.
"""

import contextlib
import itertools
import logging
from collections.abc import Sequence
from dataclasses import replace
from functools import partial

from perps_bot.domain import Fill, Order
from perps_bot.exchange.resilience import CircuitBreaker
from perps_bot.venues.base import TakenAtStart, VenueFatal, VenueSnapshot, VenueUnavailable
from perps_bot.venues.live.commissions import apply_commission
from perps_bot.venues.live.conditional import current_state
from perps_bot.venues.live.reads import AccountReads
from perps_bot.venues.live.requests import Skip
from perps_bot.venues.live.tracking import Tracked, unusable
from perps_bot.venues.live.trade_pages import TRADE_PAGE

log = logging.getLogger("perps_bot.venues.live")

#: account reads a snapshot makes while the bot's orders keep executing
SNAPSHOT_TRIES = 3


class FillPolling(AccountReads):
    breaker: CircuitBreaker
    _poll_ms: int
    _last_poll: int | None
    #: a refusal for good met while fills were waiting: raised by the next poll
    _fatal: VenueFatal | None = None

    async def poll(self, now_ms: int) -> Sequence[Fill]:
        """New fills since the last call. Requests go out at most every poll_interval;
        network errors are logged, never raised: the next poll tries again
        (`circuit_open` and `reconnects` report the outage). A refusal for good
        (VenueFatal) is raised once the fills already read are handed out."""
        if self._fatal is not None and not self._pending_fills:
            raise self._fatal
        due = self._last_poll is None or now_ms - self._last_poll >= self._poll_ms
        if due and not self.breaker.is_open and (self._unconfirmed or self._working()):
            self._last_poll = now_ms
            try:
                with contextlib.suppress(Skip):  # the exchange is failing: try next poll
                    await self._refresh(now_ms)
            except VenueFatal as fatal:  # raised now, the fills read before were lost
                if not self._pending_fills:
                    raise
                self._fatal = fatal
        return await self._hand_out()

    async def snapshot(self) -> VenueSnapshot:
        """The account (`_read_account`) in step with the venue's orders: every execution of
        them the positions hold is in `fills` or was handed out before. The orders are
        read again after the account; an order that executed since the last poll may
        have done so before the account was read or after, so the account is read again
        (VenueUnavailable when orders keep executing, or an order cannot be read: the
        reconciliation is tried again later). Before, an execution between the last
        poll and the account read was adopted with the position, then booked again by
        the next poll: the books held it twice."""
        for _ in range(SNAPSHOT_TRIES):
            before = self._executed()
            snap = await self._read_account()
            before |= {cid: seen for cid, seen in self._executed().items() if cid not in before}
            await self._refresh_all()
            if self._executed() == before:
                snap.fills = list(await self._hand_out())
                return snap
        raise VenueUnavailable(
            f"the bot's orders kept executing while the account was read ({SNAPSHOT_TRIES} tries)"
        )

    async def snapshot_to_adopt(self, since_ms: int, symbols: Sequence[str]) -> VenueSnapshot:
        """`snapshot` for books that take the account whole (a start): the account's
        trades on `symbols` from `since_ms` on are listed before and after it, until no
        trade came in between (every trade listed is in the positions read), and are
        marked handed out. Before, `exchange_fills` (which looks back a minute before
        the last reconciliation) booked them at the first difference after a restart:
        the earlier run's own fills (its orders are not this venue's), counted twice.
        A symbol whose trades are out of reach: `exchange_fills` refuses fills since
        before now on it (AccountReads._adopted_unlisted).
        It hands out no fill: the venue has placed no order yet, and the executions of
        the orders it found open (an earlier run's stop) are in the positions adopted;
        recovery books them into their run, looking them up after this, up to what
        the positions hold (`_take_followed`). Handed out, they
        were booked into books holding nothing yet (a stop's close as a new short)."""
        listed = await self._trade_ids(since_ms, symbols)
        for _ in range(SNAPSHOT_TRIES):
            snap = await self.snapshot()
            again = await self._trade_ids(since_ms, symbols)
            if again == listed:
                self._seen_trades.update(listed[0])
                adopted = self._clock()  # those out of reach: exchange_fills refuses them
                self._unlisted |= dict.fromkeys(listed[1], adopted)
                self._take_followed(adopted)
                snap.fills = []
                return snap
            listed = again
        raise VenueUnavailable(
            f"the account kept trading while it was read ({SNAPSHOT_TRIES} tries)"
        )

    def _take_followed(self, at: int) -> None:
        """The orders found open, as the account taken at `at` holds them: what each had
        executed is in the positions (recovery books it into its run: `taken_at_start`),
        what it executes from now on is this run's, handed out by `poll` with the
        commission of its own trades. Before, recovery's look-up after the start booked
        an execution made after it into the earlier run, and the new run's books, which
        took the account before it, never had it (a stop's close: long against a flat
        exchange until the next reconciliation adopted it)."""
        self._taken = {}
        for tracked in self._orders.values():
            self._taken[tracked.exchange_client_id] = TakenAtStart(
                tracked.seen_filled, tracked.seen_cost, at
            )
            tracked.hand_over_executed()

    def _executed(self) -> dict[str, float]:
        """client id -> executed quantity the venue knows, for every order it follows."""
        tracked = itertools.chain(self._orders.values(), self._unconfirmed.values())
        return {t.order.client_id: t.seen_filled for t in tracked}

    async def _refresh_all(self) -> None:
        """Every working order read now (with retries; VenueUnavailable when one cannot
        be read) and orders of unknown outcome looked up once."""
        for pending in list(self._unconfirmed.values()):
            await self._settle(pending)
        for tracked in self._working():
            await self._reread(tracked)

    async def _reread(self, tracked: Tracked) -> None:
        """One working order read now (with retries; VenueUnavailable when it cannot be
        read) and its new fills queued."""
        reply = await current_state(self._exchange, tracked, self.requests.read)
        wrong = unusable(reply, tracked.order.size) if isinstance(reply, dict) else "no object"
        if wrong is not None or not reply.get("id"):
            raise VenueUnavailable(
                f"unusable order status for {tracked.order.client_id}: {wrong or 'no id'}"
            )
        self._apply(tracked, reply, self._clock(), on_arrival=False)

    async def _hand_out(self) -> Sequence[Fill]:
        """The fills found and not handed out yet, with the exchange's commissions."""
        fills, self._pending_fills = self._pending_fills, []
        await self._charge_commissions(fills)
        for fill in fills:
            tracked = self._orders.get(fill.client_id)
            if tracked is not None:
                tracked.reported += fill.size
        for client_id in [cid for cid, t in self._orders.items() if t.finished]:
            del self._orders[client_id]
        return fills

    async def _charge_commissions(self, fills: Sequence[Fill]) -> None:
        """Replace estimated fees by the exchange's commissions (venues.live.commissions)."""
        by_order: dict[str, list[Fill]] = {}
        for fill in fills:
            by_order.setdefault(fill.client_id, []).append(fill)
        settle = self._settle_asset()
        for client_id, own in by_order.items():
            tracked = self._orders.get(client_id)
            if tracked is None or tracked.fills_id is None:
                continue
            try:
                trades = await self.requests.once(
                    f"fetch trades of {client_id}",
                    partial(
                        self._exchange.fetch_my_trades,
                        tracked.ccxt_symbol,
                        None,
                        TRADE_PAGE,  # Binance's default page of 500 left a big order estimated
                        {"orderId": tracked.fills_id},
                    ),
                )
            except Skip:
                trades = None
            except VenueFatal as exc:  # the fills go out all the same (estimated fees):
                # raised from here, they were lost; the venue's next request ends the run
                log.error("live venue: commission of %s not read: %s", client_id, exc)
                trades = None
            charged = self._commissions.total(
                trades, tracked.order.symbol, settle, tracked.foreign_filled
            )
            if not apply_commission(tracked, own, charged):
                log.info("live venue: fee of %s estimated (the exchange's trades do not"
                         " say it yet)", client_id)  # fmt: skip

    async def _refresh(self, now_ms: int) -> None:
        for pending in list(self._unconfirmed.values()):
            await self._settle(pending)
        for tracked in self._working():
            try:
                reply = await current_state(self._exchange, tracked, self.requests.once)
            except Skip as skip:
                if skip.transient:
                    raise
                continue
            wrong = unusable(reply, tracked.order.size) if isinstance(reply, dict) else "no object"
            if wrong is not None or not reply.get("id"):
                log.warning("live venue: unusable order status for %s (%s); asked again"
                            " next poll", tracked.order.client_id, wrong or "no id")  # fmt: skip
                continue
            self._apply(tracked, reply, now_ms, on_arrival=False)

    def _working(self) -> list[Tracked]:
        return [t for t in self._orders.values() if t.order.status.is_open]

    def open_orders(self) -> list[Order]:
        """Orders still in flight from the bot's point of view: open on the exchange, or
        closed with fills that `poll` has not handed out yet. In these copies `filled`
        is the quantity already reported and, for closed orders, `size` is the executed
        total, so `remaining` is exactly what may still reach the ledger. Unconfirmed
        orders are included with their full size (nobody may re-send their quantity)."""
        in_flight: list[Order] = []
        for tracked in self._orders.values():
            if tracked.finished:
                continue
            copy = replace(tracked.order, filled=tracked.reported)
            if not tracked.order.status.is_open:
                copy.size = tracked.seen_filled
            in_flight.append(copy)
        in_flight.extend(replace(t.order) for t in self._unconfirmed.values())
        return in_flight
