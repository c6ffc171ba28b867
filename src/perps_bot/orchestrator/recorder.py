"""Where each stage's outcome is written: the SQLite store, the event journal, the run
log (with the `PnL` lines) and the live view. One object so the engine's hot loop makes
one call per outcome and stays readable.

Live subscribers (`listeners`: the dashboard's stream, the session server) are handed
fills, closed trades, equity rows and state changes as (kind, payload) with plain JSON
values. Nobody listens in an ordinary run, and then the cost is one truth test per
outcome: no payload is built.
"""

import logging
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from perps_bot.domain import DenialReason, Fill, Order, OrderStatus, OrderUpdate, iso_utc
from perps_bot.domain.enums import BUY
from perps_bot.ledger import AccountBooks, FillResult, FundingResult, Ledger
from perps_bot.metrics.trade_lines import closed_trade_payload
from perps_bot.metrics.trade_records import OpenTrade, return_pct
from perps_bot.metrics.trades import RoundTripBuilder
from perps_bot.monitoring import LOGGER_NAME, HotLog, Journal, LiveView, journal_lines, pnl_text
from perps_bot.monitoring.hot_log import EQUITY, FILL, FUNDING, TRADE_CLOSED, fill_text, trade_text
from perps_bot.monitoring.journal_event import EventType
from perps_bot.monitoring.logs import about
from perps_bot.storage import RunStore

if TYPE_CHECKING:  # the writer (pyarrow.parquet) loads only for a run that is captured
    from perps_bot.storage.capture import CaptureWriter

#: order updates worth a log line: those no FILL line explains
_NOTEWORTHY = frozenset({OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED})
#: refusals of the order size by the instrument's rules: what to do with strategy.order_size
_SIZE_REFUSALS = {
    DenialReason.BELOW_MIN_NOTIONAL: "raise",
    DenialReason.BELOW_MIN_QUANTITY: "raise",
    DenialReason.ABOVE_MAX_QUANTITY: "lower",
}

#: a live subscriber: (kind, payload); kinds: fill, liquidation, trade, equity, state_change
Listener = Callable[[str, dict[str, Any]], None]


class Recorder:
    def __init__(
        self,
        *,
        run_id: str,
        store: RunStore,
        journal: Journal,
        view: LiveView,
        ledger: Ledger | AccountBooks,
        logger: logging.Logger,
        watched: bool = True,
        portfolio: str | None = None,
    ) -> None:
        """`watched`: someone reads the live view's state (the console view or the
        status server); otherwise the per-fill view update is skipped, as nobody sees it."""
        self.run_id = run_id
        self.store = store
        equity_rows = store.equity_sink(run_id)
        self._add_ts, self._add_values = equity_rows.add_ts, equity_rows.add_values
        self.journal = journal
        self.view = view
        self.ledger = ledger
        #: in runs with several portfolios, the id its log lines name
        self._tag = f"[{portfolio}] " if portfolio is not None else ""
        #: its WARNING lines are about it (its promotion counts them, not the others')
        self._about = about(portfolio) if portfolio is not None else {}
        self.log = logger
        self.fills = 0
        self.liquidations = 0
        self.denials: Counter[str] = Counter()
        #: (symbol, reason) of the size refusals already logged (once each)
        self._size_refused: set[tuple[str, str]] = set()
        self._watched = watched
        self._debug = logger.isEnabledFor(logging.DEBUG)
        # INFO off (optimisation trials log nothing): the per-fill text is not even built
        self._info = logger.isEnabledFor(logging.INFO)
        #: round trips built (TRADE CLOSED lines, trade_closed events): see follow_trades
        self._trades = self._info
        self._hot = HotLog(logger)  # fill, funding and equity lines: once per fill
        self._trips = RoundTripBuilder()  # the report's round trips, for TRADE CLOSED lines
        self._log_handlers = list(logging.getLogger(LOGGER_NAME).handlers)
        #: the run's capture (exchange-fed runs, SPEC 14): order updates and fills
        self.capture: CaptureWriter | None = None
        #: stores the trading state when it changes (SPEC 9: a halt survives restarts)
        self.on_state_change: Callable[[], None] | None = None
        #: a resumed run's state stored after its checkpoint: its replay, not alerted again
        self.replayed_state: str | None = None
        #: a resumed run: its events up to this time were logged before the stop (SPEC 9)
        self.replayed_until = -(2**62)
        #: live subscribers (see the module doc); called in order, on the trading path
        self.listeners: list[Listener] = []
        #: why an approved order is smaller than its signal (client id -> note), until
        #: its `order` line is written
        self._resized: dict[str, dict[str, Any]] = {}

    def open_trades(self) -> dict[str, OpenTrade]:
        """The round trips open now (a checkpoint keeps them: a resumed run closes them)."""
        return dict(self._trips.open)

    def restore_open_trades(self, trades: dict[str, OpenTrade]) -> None:
        self._trips.open = dict(trades)

    def follow_trades(self) -> None:
        """Build the round trips (trade_closed events) whatever the log level: someone
        follows the run's trades (metrics, alerts)."""
        self._trades = True

    @property
    def hot_log(self) -> HotLog:
        """Its fill, funding and equity lines (a backtest hands them to a process)."""
        return self._hot

    # -- PnL -----------------------------------------------------------------------
    def pnl(self) -> str:
        return pnl_text(*self._pnl_values())

    def _pnl_values(self) -> tuple[float, float, float, float, float]:
        """The figures of a `PnL` fragment (`pnl_text`'s arguments)."""
        ledger = self.ledger
        return (
            ledger.realized_pnl(),
            ledger.unrealized_pnl(),
            ledger.fees_paid(),
            ledger.funding_total(),
            ledger.equity(),
        )

    # -- outcomes ------------------------------------------------------------------
    def signal(self, ts: int, symbol: str, side: str, size: float, reason: str, cid: str) -> None:
        self.journal.emit(journal_lines.SIGNAL, ts, (symbol, side, size, reason), cid)

    def denial(
        self, ts: int, symbol: str, reason: DenialReason | None, detail: str, cid: str
    ) -> None:
        code = str(reason) if reason is not None else "VENUE_REJECTED"
        self.denials[code] += 1
        self.view.state.denials += 1
        self.store.add_denial(self.run_id, ts, symbol, code, detail, cid)
        self.journal.write("denial", ts, {"symbol": symbol, "reason": code, "detail": detail}, cid)
        if reason in _SIZE_REFUSALS and (symbol, code) not in self._size_refused:
            # the order size is outside the instrument's limits: a profile to fix, which
            # would otherwise show only as a strategy that never trades
            self._size_refused.add((symbol, code))
            self.log.warning(
                "%s %s orders refused before they exist: %s; %s strategy.order_size for"
                " %s (further refusals are counted in the report, not logged)",
                iso_utc(ts), symbol, detail, _SIZE_REFUSALS[reason], symbol, extra=self._about,
            )  # fmt: skip
        elif self._debug:
            self.log.debug("%s DENIED %s %s: %s", iso_utc(ts), symbol, code, detail)

    def resized(self, cid: str, requested: float, reason: str, detail: str) -> None:
        """The risk gate (or the account's caps) cut order `cid` from `requested`: its
        `order` line carries the cap and the gate's note."""
        self._resized[cid] = {"requested": requested, "reason": reason, "detail": detail}

    def order(self, order: Order, latency_s: float | None = None) -> None:
        """An order the risk gate approved, as it goes to the venue (status new);
        `latency_s`: wall time since the market event that caused it was received."""
        self.store.add_order(self.run_id, order)
        latency_ms = None if latency_s is None else latency_s * 1000.0
        if latency_ms is not None:
            self.view.state.latency_ms = latency_ms
        self.journal.emit(
            journal_lines.ORDER,
            order.created_ts,
            (order.client_id, order.symbol, order.side._value_, order.size,
             order.order_type._value_, order.price, order.reduce_only, order.status._value_,
             order.reason, self._resized.pop(order.client_id, None), latency_ms),
            order.correlation_id,
        )  # fmt: skip

    def order_update(self, update: OrderUpdate) -> None:
        """A lifecycle change the venue reported: the order's row is rewritten."""
        self.store.add_order(self.run_id, update.order, update)
        if self.capture is not None:
            self.capture.order_update(update)
        self.journal.emit(
            journal_lines.ORDER_UPDATE,
            update.ts,
            (update.client_id, update.symbol, update.status._value_, update.filled,
             update.avg_price, update.reason),
            update.order.correlation_id,
        )  # fmt: skip
        if update.status in _NOTEWORTHY:  # accepted and filled: the FILL line tells
            self.log.info(
                "%s ORDER %s %s %s %s (filled %.10g)",
                self._stamp(update.ts),
                update.client_id,
                update.symbol,
                update.status._value_.upper(),
                update.reason,
                update.filled,
            )

    def _stamp(self, ts: int) -> str:
        """The simulated time a log line starts with; a resumed run's lines of the events
        it replays, logged once before the stop, say so."""
        return iso_utc(ts) + self._replayed(ts)

    def _replayed(self, ts: int) -> str:
        return " (replayed)" if ts <= self.replayed_until else ""

    def position(self, symbol: str, size: float, entry: float, ts: int) -> None:
        """A position adopted from the venue (reconciliation), not from a fill."""
        self.store.set_position(self.run_id, symbol, size, entry, ts)

    def fill(self, fill: Fill, result: FillResult) -> None:
        self.fills += 1
        if self.capture is not None:
            self.capture.fill(fill)
        self.store.add_fill(
            self.run_id,
            fill,
            realized_pnl=result.realized_pnl,
            position_after=result.position_after,
            entry_after=result.entry_after,
        )
        self.store.set_position(
            self.run_id, fill.symbol, result.position_after, result.entry_after, fill.ts
        )
        line = (fill.client_id, fill.symbol, fill.side._value_, fill.size, fill.price,
                fill.fee, fill.liquidity._value_, result.realized_pnl, result.position_after,
                fill.reason)  # fmt: skip
        if self.listeners:  # the line's fields are also theirs
            kind: EventType = "liquidation" if fill.is_liquidation else "fill"
            payload = journal_lines.fill_data(*line)
            self.journal.write(kind, fill.ts, payload, fill.correlation_id)
            self._publish(kind, {"ts": fill.ts, **payload})
        else:
            recipe = journal_lines.LIQUIDATION if fill.is_liquidation else journal_lines.FILL
            self.journal.emit(recipe, fill.ts, line, fill.correlation_id)
        if fill.is_liquidation:
            self.liquidations += 1
        if not (self._trades or self.listeners or fill.is_liquidation):
            if self._watched:
                self.view.state.fills += 1
            return
        label = "LIQUIDATION" if fill.is_liquidation else "FILL"
        replayed = self._replayed(fill.ts)
        args = (fill.ts, replayed, self._tag, label, fill.symbol, fill.side._value_, fill.size,
                fill.price, fill.fee, result.position_after, *self._pnl_values())  # fmt: skip
        if fill.is_liquidation:
            self.log.warning(fill_text(*args), extra=self._about)
        else:
            self._hot.emit(FILL, args)
        closed = None
        if self._trades or self.listeners:  # round trips: TRADE CLOSED lines and events
            closed = self._trips.add_fill(
                fill.symbol,
                fill.side is BUY,
                fill.size,
                fill.price,
                fill.fee,
                result.realized_pnl,
                result.position_after,
                fill.ts,
                fill.stop_price,
            )
        if closed is not None:
            self._trade_closed(closed, fill, replayed)
            if self.listeners:
                self._publish("trade", closed_trade_payload(closed, fill.ts, fill.reason))
        if self._watched:
            trade = trade_text(fill.symbol, fill.side, fill.size, fill.price)
            self.view.state.last_fills.append(f"{iso_utc(fill.ts)[:19]} {trade}")
            self.view.state.fills += 1

    def _trade_closed(self, trade: OpenTrade, fill: Fill, replayed: str) -> None:
        """The TRADE CLOSED line and the trade_closed event, from one reading of the
        trade's figures."""
        entry, net, size = trade.entry_price, trade.net_pnl, trade.max_size
        exit_price = trade.exit_price
        side = "long" if trade.direction > 0 else "short"
        ret = return_pct(net, entry, size)
        held_s = (fill.ts - trade.open_ts) / 1000.0
        self._hot.emit(
            TRADE_CLOSED,
            (fill.ts, replayed, self._tag, trade.symbol, side, size, entry, exit_price, net, ret,
             held_s, fill.reason),
        )  # fmt: skip
        self.journal.emit(
            journal_lines.TRADE_CLOSED,
            fill.ts,
            (trade.symbol, side, size, entry, exit_price, net, ret, trade.open_ts, fill.reason),
            fill.correlation_id,
        )

    def funding(self, ts: int, symbol: str, result: FundingResult, note: str = "") -> None:
        """A settlement booked; `note`: how it came (the journal line carries it)."""
        if self._trades or self.listeners:
            self._trips.add_funding(symbol, result.payment)
        self.store.add_funding(
            self.run_id, ts, symbol, result.rate, result.mark, result.position, result.payment
        )
        data = {
            "symbol": symbol,
            "rate": result.rate,
            "mark": result.mark,
            "position": result.position,
            "payment": result.payment,
        }
        self.journal.write("funding", ts, data | {"note": note} if note else data)
        if not self._info:
            return
        replayed = self._replayed(ts)
        self._hot.emit(
            FUNDING,
            (ts, replayed, self._tag, symbol, result.rate, result.mark, result.position,
             result.payment, *self._pnl_values()),
        )  # fmt: skip

    def equity(self, ts: int, *, log_line: bool) -> float:
        ledger = self.ledger
        unrealized = ledger.unrealized_pnl()
        cash = ledger.wallet_balance()
        equity = cash + unrealized
        self._add_ts(ts)
        self._add_values([equity, cash, unrealized])
        if self.listeners:
            self._publish(
                "equity", {"ts": ts, "equity": equity, "cash": cash, "unrealized_pnl": unrealized}
            )
        if log_line:
            if self._info:
                replayed = self._replayed(ts)
                self._hot.emit(EQUITY, (ts, replayed, self._tag, *self._pnl_values()))
            self.journal.emit(journal_lines.EQUITY, ts, (equity, unrealized))
        return equity

    def state_change(self, ts: int, state: str, detail: str) -> None:
        self.view.state.risk_state = state
        data: dict[str, Any] = {"state": state, "detail": detail}
        if state == self.replayed_state:  # stored and announced before the restart
            self.replayed_state, data["replayed"] = None, True
        self.journal.write("state_change", ts, data)
        again = " again (replayed after the restart)" if "replayed" in data else ""
        self.log.warning("%s RISK STATE -> %s (%s)%s", iso_utc(ts), state, detail, again,
                         extra=self._about)  # fmt: skip
        if self.on_state_change is not None:
            self.on_state_change()
        if self.listeners:
            self._publish("state_change", {"ts": ts, "state": state, "detail": detail})

    def _publish(self, kind: str, payload: dict[str, Any]) -> None:
        for listener in self.listeners:
            listener(kind, payload)

    def flush(self) -> None:
        self.store.flush()
        self.journal.flush()
        self.flush_log()

    def flush_log(self) -> None:
        """Once per batch: push buffered log lines to the file (so `tail -f` keeps up),
        and store the buffered rows if there is a batch of them."""
        self.store.flush_if_due()
        for handler in self._log_handlers:
            handler.flush()
