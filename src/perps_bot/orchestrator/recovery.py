"""After a crash, the exchange's fills that the killed run never stored (SPEC 9).

A live run commits each order's intent before its request leaves and each fill as soon
as the exchange reports it; a kill between the exchange's execution and that commit
still leaves an order row that is not final. When the next live bot of the profile
starts, before it trades, every such order of the earlier live runs is looked up on the
exchange by its client id; what the exchange executed beyond what was stored becomes a
fill of that earlier run (priced from the order's cumulative cost, the fee from its
trades' commissions, booked through a ledger replayed from that run's stored fills and
funding), and the order row gets its final state. The new run adopts the exchange's
positions at its own start, so nothing is counted twice: looked up after that start,
an order the start found open is booked into its run only up to what the positions
taken held (`_up_to_the_start`), and what it executed after is the new run's fill.
"""

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from perps_bot.config import Settings
from perps_bot.domain import (
    Fill,
    Instrument,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Side,
    fill_of,
    transition,
)
from perps_bot.domain.timeutil import parse_duration
from perps_bot.exchange.runtime import CLOCK_MARGIN_MS, wall_clock_ms
from perps_bot.ledger import Ledger
from perps_bot.storage import RunStore
from perps_bot.storage.records import OrderRecord
from perps_bot.venues.base import TakenAtStart
from perps_bot.venues.fill_rules import fee_for

log = logging.getLogger("perps_bot.run")

OPEN = ("new", "unknown", "accepted", "partially_filled")
_EPS = 1e-12


class ExchangeOrders(Protocol):
    """What recovery asks the live venue."""

    async def order_by_client_id(
        self, symbol: str, client_id: str, kind: OrderType = OrderType.MARKET
    ) -> dict[str, Any] | None: ...

    async def commission_of(
        self, symbol: str, exchange_id: str, executed: float | None = None
    ) -> float | None: ...

    def taken_at_start(self, client_id: str) -> TakenAtStart | None: ...


async def recover_unstored_fills(
    store: RunStore,
    exchange: ExchangeOrders,
    settings: Settings,
    instruments: Mapping[str, Instrument],
    current_run_id: str,
) -> int:
    """Book into earlier live runs the fills the exchange made and they never stored;
    returns how many."""
    # the newest first: an order a later run found open and followed is that run's
    # from then on (_stored_fills), so what it executed after is missing there
    runs = store.execute(
        "SELECT o.run_id FROM orders o JOIN runs r ON r.run_id = o.run_id"
        " WHERE r.kind = 'live' AND o.run_id != ? AND o.status IN (?, ?, ?, ?)"
        " GROUP BY o.run_id ORDER BY MAX(r.created_at) DESC, o.run_id DESC",
        (current_run_id, *OPEN),
    )
    booked = 0
    # the killed process sent nothing after it died, before this start: a request still
    # on its way can execute until a receive window after now, however old its intent
    window = parse_duration(settings.exchange.recv_window) + CLOCK_MARGIN_MS
    final_from = wall_clock_ms() + window
    for (run_id,) in runs:
        booked += await _recover_run(store, exchange, settings, instruments, run_id, final_from)
    return booked


async def _recover_run(
    store: RunStore,
    exchange: ExchangeOrders,
    settings: Settings,
    instruments: Mapping[str, Instrument],
    run_id: str,
    final_from: int,
) -> int:
    ledger: Ledger | None = None
    booked = 0
    stored = _stored_fills(store, run_id)
    intents = _intents(store, run_id)
    for row in store.orders(run_id):
        if row.status not in OPEN or row.symbol not in instruments:
            continue
        reply = await _look_up(exchange, row, final_from)
        order = _order(row, intents.get(row.client_id))
        if reply is None:
            _finish(store, run_id, order, None, row.updated)
            continue
        reply = _up_to_the_start(reply, exchange.taken_at_start(row.client_id))
        executed = _num(reply.get("filled"))
        have = stored.get(row.client_id, Stored(0.0, 0.0, 0.0))
        if row.filled > have.size:  # what the row says it had, fills or not
            have = Stored(row.filled, row.filled * row.avg_price, have.fee)
        missing = executed - have.size
        if missing > _EPS * max(1.0, executed):
            if ledger is None:
                ledger = _replayed(store, settings, instruments, run_id)
            fill = await _missing_fill(
                exchange, reply, order, have, missing, instruments[row.symbol]
            )
            before = ledger.position_size(fill.symbol)
            result = ledger.apply_fill(fill)
            store.add_fill(
                run_id,
                fill,
                realized_pnl=result.realized_pnl,
                position_after=result.position_after,
                entry_after=result.entry_after,
            )
            store.set_position(
                run_id, fill.symbol, result.position_after, result.entry_after, fill.ts
            )
            booked += 1
            log.warning(
                "recovered a fill of run %s from the exchange: %s %s %.10g @ %.10g"
                " (position %+g -> %+g)",
                run_id,
                fill.symbol,
                fill.side,
                fill.size,
                fill.price,
                before,
                result.position_after,
            )
        _finish(store, run_id, order, reply, row.updated)
    store.flush()
    if booked:
        store.add_run_detail(run_id, f"{booked} fills recovered from the exchange after the crash")
    return booked


async def _look_up(
    exchange: ExchangeOrders, row: OrderRecord, final_from: int
) -> dict[str, Any] | None:
    """The exchange's order; None only from an answer asked at `final_from` or later,
    when no request of the killed run can execute any more. Not its intent's time: an
    order of unknown outcome is sent again only after its first window, and a request
    may still be on its way. Nor when a 'not found' came back: it tells of when it was
    asked."""
    kind = OrderType(row.order_type)
    asked = wall_clock_ms()
    reply = await exchange.order_by_client_id(row.symbol, row.client_id, kind)
    if reply is None and asked < final_from:
        wait_ms = final_from - wall_clock_ms()
        log.info("order %s not on the exchange (yet): asking again in %d ms, when a"
                 " request of the killed run can no longer execute", row.client_id,
                 max(wait_ms, 0))  # fmt: skip
        if wait_ms > 0:
            await asyncio.sleep(wait_ms / 1000.0)
        reply = await exchange.order_by_client_id(row.symbol, row.client_id, kind)
    return reply


def _up_to_the_start(reply: dict[str, Any], taken: TakenAtStart | None) -> dict[str, Any]:
    """The order as the account the new run took holds it (`taken`: what the live venue
    followed of it then), or `reply` when it executed no more since (or was not
    followed). What it executed after is the new run's (its venue hands it out), so the
    earlier run keeps the order open, and books it only up to there: its
    commission, that of its first `filled` (commission_of). Before, the whole of it was
    booked here, and the new run's books, taken before it, never had it."""
    filled = _num(reply.get("filled"))
    if taken is None or filled <= taken.filled + _EPS * max(1.0, filled):
        return reply
    average = taken.cost / taken.filled if taken.filled > _EPS else 0.0
    return reply | {"filled": taken.filled, "cost": taken.cost, "average": average,
                    "status": "open", "lastTradeTimestamp": taken.at}  # fmt: skip


class Intent(NamedTuple):
    """What the order's stored row says beyond its state (storage.orders.OrderRecord)."""

    reason: str
    correlation_id: str
    price: float | None
    reduce_only: bool
    exchange_id: str | None


def _intents(store: RunStore, run_id: str) -> dict[str, Intent]:
    """The stored intent of each order of the run, by client id: the reason it was made
    for (its signal's), its correlation id (a protective order's: the entry's), its
    limit price, reduce-only flag and exchange id, which its row keeps once recovered."""
    rows = store.execute(
        "SELECT client_id, reason, correlation_id, price, reduce_only, exchange_id"
        " FROM orders WHERE run_id=?",
        (run_id,),
    )
    return {str(cid): _intent(cid, *rest) for cid, *rest in rows}


def _intent(
    cid: Any, reason: Any, link: Any, price: Any, reduce_only: Any, exchange_id: Any
) -> Intent:
    return Intent(
        str(reason or ""),
        str(link or cid),
        None if price is None else float(price),
        bool(reduce_only),
        None if exchange_id is None else str(exchange_id),
    )


def _order(row: OrderRecord, intent: Intent | None) -> Order:
    """The stored order back as an Order (the state machine moves it on) as its intent
    was stored (`intent`, None: a row without one): its reason (the exit reason of a
    trade it closes: a stop or a take-profit keeps its own), correlation id, limit
    price, reduce-only flag and exchange id, so its row rewritten keeps them (a reduce-
    only close stored as a plain order lost its flag)."""
    kind = OrderType(row.order_type)
    if intent is None:
        intent = Intent("", row.client_id, None, kind.is_trigger, None)
    return Order(
        client_id=row.client_id,
        symbol=row.symbol,
        side=Side(row.side),
        size=row.size,
        order_type=kind,
        price=intent.price,
        reduce_only=intent.reduce_only,
        created_ts=row.created,
        correlation_id=intent.correlation_id,
        reason=intent.reason or kind.exit_reason,
        status=OrderStatus(row.status),
        filled=row.filled,
        avg_price=row.avg_price,
        updated_ts=row.updated,
        portfolio=row.portfolio,
        exchange_id=intent.exchange_id,
    )


class Stored(NamedTuple):
    """What the stored fills of one order add up to."""

    size: float
    cost: float
    fee: float


def _stored_fills(store: RunStore, run_id: str) -> dict[str, Stored]:
    """The stored fills of the run's orders, by order. A fill is committed the moment it
    is known and its order's update (filled) with the next rows: after a kill in
    between, the fills are ahead of the order row, and what they hold is not missing.
    A later live run that found one of these orders still open on the exchange (a stop
    left resting) followed it and stored its later fills as its own, under the same
    client id: those are not missing either. Before, the next start booked them again,
    into this run (a stop's close counted twice)."""
    rows = store.execute(
        "SELECT f.client_id, f.size, f.price, f.fee FROM fills f"
        " JOIN runs r ON r.run_id = f.run_id"
        " JOIN orders o ON o.run_id = ? AND o.client_id = f.client_id AND o.symbol = f.symbol"
        " WHERE f.run_id = ? OR r.kind = 'live'",
        (run_id, run_id),
    )
    out: dict[str, Stored] = {}
    for client_id, fill_size, price, fill_fee in rows:
        size, cost, fee = out.get(client_id, Stored(0.0, 0.0, 0.0))
        out[client_id] = Stored(size + fill_size, cost + fill_size * price, fee + fill_fee)
    return out


async def _missing_fill(
    exchange: ExchangeOrders,
    reply: dict[str, Any],
    order: Order,
    stored: Stored,
    missing: float,
    instrument: Instrument,
) -> Fill:
    """The quantity the exchange executed beyond what was stored, at the price that
    explains the order's cumulative cost, with the exchange's commission for it; when
    its trades cannot tell it, the instrument's taker fee on it (it was booked free)."""
    executed, average = _num(reply.get("filled")), _num(reply.get("average"))
    cost = _num(reply.get("cost")) or executed * average
    price = (cost - stored.cost) / missing if cost > stored.cost else average
    total_fee = await exchange.commission_of(order.symbol, str(reply.get("id")), executed)
    if total_fee is not None:
        fee = total_fee - stored.fee
    else:
        fee = fee_for(missing * price, instrument.taker_bps)
        log.warning("the exchange's commission of order %s cannot be read: the recovered"
                    " fill's fee %.10g is the instrument's taker fee", order.client_id,
                    fee)  # fmt: skip
    ts = int(_num(reply.get("lastTradeTimestamp")) or _num(reply.get("timestamp")))
    return fill_of(order, ts, missing, price, fee, Liquidity.TAKER)


_FINAL = {
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}


def _finish(store: RunStore, run_id: str, order: Order, reply: Any, ts: int) -> None:
    """Write the order row as the exchange knows it (or rejected: it never got there)."""
    if reply is None:
        store.add_order(
            run_id, order, transition(order, OrderStatus.REJECTED, ts, "never reached the exchange")
        )
        return
    order.filled = _num(reply.get("filled"))
    order.avg_price = _num(reply.get("average")) or order.avg_price
    ts = int(_num(reply.get("lastTradeTimestamp")) or _num(reply.get("timestamp")) or ts)
    update = None
    if order.status in (OrderStatus.NEW, OrderStatus.UNKNOWN):
        update = transition(order, OrderStatus.ACCEPTED, ts, "found on the exchange after a crash")
    final = _FINAL.get(str(reply.get("status") or ""))
    if final is not None:
        if final is OrderStatus.FILLED:
            order.size = order.filled
        update = transition(order, final, ts, "recovered from the exchange after a crash")
    if update is not None:
        store.add_order(run_id, order, update)


def _replayed(
    store: RunStore, settings: Settings, instruments: Mapping[str, Instrument], run_id: str
) -> Ledger:
    """A ledger holding the earlier run's last stored positions (after its fills and any
    position it adopted from the exchange), to book the missing fills against."""
    run = store.run(run_id)
    account = settings.account.model_copy(update={"initial_balance": run.initial_balance})
    ledger = Ledger(account, instruments, models_liquidation=False)
    held = {s: p for s, p in store.positions(run_id).items() if s in instruments}
    ledger.restore(run.initial_balance, held)
    return ledger


def _num(value: Any) -> float:
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


__all__: Sequence[str] = ["recover_unstored_fills"]
