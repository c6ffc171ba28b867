"""The instrument's part of turning signals into orders (SPEC 8): an approved intent
rounded and checked against the exchange's minimums by its instrument before any order
exists, a close above the exchange's largest market order split into several
(orchestrator.order_parts), the entry of a flip held until its close is done
(orchestrator.held_entries), and the orders' client ids. A base of
orchestrator.order_flow's OrderFlow, whose attributes these are.
"""

from collections.abc import Sequence

from perps_bot.domain import (
    AccountView,
    DenialReason,
    Instrument,
    InstrumentRefusal,
    Order,
    OrderIntent,
    PreparedOrder,
)
from perps_bot.domain.enums import LIMIT
from perps_bot.ledger import Ledger
from perps_bot.orchestrator.held_entries import HeldEntries, HeldEntry
from perps_bot.orchestrator.order_parts import closing_parts, netted_parts
from perps_bot.orchestrator.recorder import Recorder
from perps_bot.risk.gate import RiskDecision


class InstrumentOrders:
    portfolio: str
    ledger: Ledger
    instruments: dict[str, Instrument]
    rec: Recorder
    netted: AccountView | None
    held: HeldEntries
    seq: int
    _prefix: str

    def _instrument_orders(
        self,
        intent: OrderIntent,
        decision: RiskDecision,
        made: tuple[str, int, float, float],
        on_way: Sequence[Sequence[Order]],
    ) -> list[Order]:
        """The orders as the instrument rounds them: one, or a close above the exchange's
        largest market order as several (`closing_parts`), the first with the intent's
        client id, each further one with its own, all with its correlation id. An empty
        list, the denial recorded, when the instrument refuses it (a cap that cut it below
        the minimum is the denial's code). `made`: client id, time, last price, size."""
        cid, ts, price, size = made
        instrument = self.instruments.get(intent.symbol)
        if instrument is None:  # data for it, but not one of the run's instruments
            self.rec.denial(ts, intent.symbol, DenialReason.STALE_MARKET_DATA,
                            f"{intent.symbol} is not traded by this run", cid)  # fmt: skip
            return []
        reduce_only = intent.reduce_only or decision.reduce_only
        held = self.ledger.position_size(intent.symbol)
        parts = closing_parts(instrument, intent, size, reduce_only, held)
        flip = len(parts) > 1 and not parts[-1][1]  # closes, then the other side's entry
        parts = netted_parts(self.netted, intent, parts, on_way)
        mark = self.ledger.mark_price(intent.symbol)  # a market order's notional is at it
        orders: list[Order] = []
        for n, (part, part_reduce_only) in enumerate(parts):
            own = cid if n == 0 else self.next_client_id()
            entry = flip and n == len(parts) - 1  # a flip's last part opens the other side
            protects = not flip or entry  # the entry of a flip carries it
            try:
                prepared = instrument.prepare(
                    intent.side, part, intent.order_type, intent.limit_price, part_reduce_only,
                    price, mark,
                )  # fmt: skip
            except InstrumentRefusal as refusal:
                code, detail = refusal.reason, refusal.detail
                if decision.reason is not None:  # a cap cut it below what it trades
                    code, detail = decision.reason, f"{decision.detail}; {detail}"
                if entry:
                    detail += (f"; the position's close goes out ({len(orders)} orders),"
                               " this part would open the other side")  # fmt: skip
                self.rec.denial(ts, intent.symbol, code, detail, own)
                continue
            order = self._order(intent, prepared, part_reduce_only, own, cid, ts, protects)
            if entry:  # it waits for the close (held_entries)
                self.held.hold(HeldEntry.after(order, orders))
            else:
                orders.append(order)
        return orders

    def _order(
        self,
        intent: OrderIntent,
        prepared: PreparedOrder,
        reduce_only: bool,
        cid: str,
        correlation_id: str,
        ts: int,
        protects: bool = True,
    ) -> Order:
        """`protects`: it carries the intent's stop, take-profit and planned stop (not
        the closes that come before a flip's entry: they protect nothing)."""
        stop_loss = intent.stop_loss if protects else None
        planned = intent.stop_price if intent.stop_price is not None else stop_loss
        return Order(
            client_id=cid,
            symbol=intent.symbol,
            side=intent.side,
            size=prepared.size,
            order_type=intent.order_type,
            price=prepared.price if intent.order_type is LIMIT else None,
            reduce_only=reduce_only,
            created_ts=ts,
            correlation_id=correlation_id,
            reason=intent.reason,
            stop_price=planned if protects else None,
            updated_ts=ts,
            portfolio=self.portfolio,
            stop_loss=stop_loss,
            take_profit=intent.take_profit if protects else None,
        )

    def next_client_id(self) -> str:
        self.seq += 1
        return f"{self._prefix}{self.seq}"
