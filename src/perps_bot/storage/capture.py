"""Recording what an exchange-fed run saw (SPEC 14) under `data/captures/<run_id>/`.

Why this shape:
- The trading path only enqueues: a batch of market events (the list the feed
  yielded, not copied) or one order step is one `put_nowait` on a bounded queue.
  A writer thread turns them into column buffers (storage.capture_format) and
  writes a zstd Parquet chunk every `chunk_rows` rows, so memory stays bounded by
  the queue and one chunk whatever the run's length. pyarrow releases the GIL
  while it encodes and writes.
- A request's row (sent, acknowledged, unanswered) is written from a copy of the order
  taken when it was enqueued: the order keeps changing (its answer, its fills) before
  the thread writes the row, which is to hold its status at that step.
- When the queue is full (the disk cannot keep up) the item is dropped and
  counted, never waited for: trading does not slow down for the recorder. The
  count is in `meta.json` (`dropped`); a capture with drops says so.
- `meta.json` describes the run (id, kind, profile, strategy and parameters, the
  config it ran with, its instruments) so a replay needs nothing but the folder,
  and is rewritten at close with the counts.
- A resumed run (SPEC 9) goes on writing its capture: the chunks carry on from the
  ones on disk (a crash may have left meta.json behind them), and `gaps` in meta.json
  lists each time the run was down ({"from": the checkpoint it went on from, "until":
  its restart, "closed": whether the stopped run closed its part}), which a replay and
  drift name in their warning (feeds.replay.incomplete_warning).
- The order rows buffered are written with every market-data chunk (and when they fill
  one themselves), not only at close: a run that never closes its capture loses the
  rows after its last chunks, not every order round trip it made.
"""

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from copy import copy
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from perps_bot.domain import Candle, Fill, Instrument, MarketEvent, Order, OrderUpdate
from perps_bot.storage.capture_format import (
    EVENT_SCHEMA,
    ORDER_COLUMNS,
    ORDER_SCHEMA,
    WARMUP_SCHEMA,
    EventRows,
    warmup_columns,
)

log = logging.getLogger("perps_bot.capture")

META = "meta.json"
WARMUP = "warmup.parquet"
_STOP = ("stop", None)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def instrument_config(instrument: Instrument) -> dict[str, Any]:
    """An instrument as a profile's `instruments:` entry (a replay trades the same one)."""
    return {
        "exchange_symbol": instrument.exchange_symbol,
        "tick_size": instrument.tick_size,
        "step_size": instrument.step_size,
        "min_quantity": instrument.min_quantity,
        "min_notional": instrument.min_notional,
        "max_quantity": instrument.max_quantity,
        "max_market_quantity": instrument.max_market_quantity,
        "max_algo_orders": instrument.max_algo_orders,
        **_band(instrument.price_band),
        "tiers": [list(row) for row in instrument.tiers],
        "maker_bps": instrument.maker_bps,
        "taker_bps": instrument.taker_bps,
    }


def _band(band: tuple[float, float] | None) -> dict[str, float]:
    if band is None:
        return {}
    return {"price_multiplier_up": band[0], "price_multiplier_down": band[1]}


class CaptureWriter:
    """Bounded-queue recorder of one run's market data and order round trips."""

    def __init__(
        self,
        folder: Path,
        meta: Mapping[str, Any],
        *,
        chunk_rows: int = 50_000,
        max_queued: int = 20_000,
        resumed: bool = False,
    ) -> None:
        """`resumed`: the run goes on from a checkpoint; the capture it wrote before it
        stopped goes on too (see `gap`)."""
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._meta = dict(meta)
        self._chunk_rows = chunk_rows
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=max_queued)
        self._events = EventRows()
        self._orders: dict[str, list[Any]] = {name: [] for name in ORDER_COLUMNS}
        self._chunks = {"events": 0, "orders": 0}
        self.counts = {"events": 0, "books": 0, "trades": 0, "orders": 0}
        self.dropped = 0
        self.closed = False
        self._sent: set[str] = set()  # client ids sent or found open: recorded already
        self._before: dict[str, Any] | None = self._go_on() if resumed else None
        self._write_meta()
        self._thread = threading.Thread(target=self._drain, name="capture writer", daemon=True)
        self._thread.start()

    def _go_on(self) -> dict[str, Any] | None:
        """The meta.json of the part written before the stop (None: none readable), its
        counts taken over and the chunk numbers carried on from the files on disk."""
        for table in self._chunks:
            numbers = [p.stem.rpartition("-")[2] for p in self.folder.glob(f"{table}-*.parquet")]
            self._chunks[table] = max((int(n) for n in numbers if n.isdigit()), default=0)
        try:
            before = json.loads((self.folder / META).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(before, dict):
            return None
        counts = before.get("counts")
        if isinstance(counts, dict):
            self.counts.update({k: v for k, v in counts.items() if isinstance(v, int)})
        dropped = before.get("dropped")
        self.dropped = dropped if isinstance(dropped, int) else 0
        for key in ("gaps", "error"):
            if key in before:
                self._meta[key] = before[key]
        return before

    def gap(self, since_ms: int | None, until_ms: int) -> None:
        """The run was down from its checkpoint at `since_ms` (None: it went on from its
        start) until `until_ms`: nothing was captured in between (and what the stopped
        run captured after the checkpoint, the resumed run did not trade on)."""
        closed = bool(self._before.get("complete")) if self._before is not None else False
        gaps = list(self._meta.get("gaps", []))
        gaps.append({"from": since_ms, "until": until_ms, "closed": closed})
        self._meta["gaps"] = gaps
        self._write_meta()

    # -- the trading path: enqueue only ------------------------------------------------
    def events(self, batch: Sequence[MarketEvent]) -> None:
        self._put(("events", batch))

    def warmup(self, candles: Mapping[str, Sequence[Candle]]) -> None:
        """The closed candles the run's strategies were warmed up with (once, at start)."""
        self._put(("warmup", dict(candles)))

    def order_sent(self, order: Order) -> None:
        self._sent.add(order.client_id)
        self._put(("order", ("sent", wall_ms(), copy(order), None)))

    def open_orders(self, orders: Iterable[Order]) -> None:
        """Orders a reconciliation found open on the exchange: each the run did not send
        (left by an earlier run of a restarted bot, placed by hand) is recorded once, an
        `open` row with its status and what it had executed, so a replay takes it out
        of the books it matches against as it does the run's own (feeds.replay_own)."""
        at = wall_ms()
        for order in orders:
            if order.client_id not in self._sent:
                self._sent.add(order.client_id)
                self._put(("order", ("open", at, copy(order), None)))

    def order_acknowledged(
        self, order: Order, round_trip_ms: int | None = None, *, measured: bool = False
    ) -> None:
        """The venue answered the request (whatever it said: its status is recorded).
        `round_trip_ms`: how long the answered attempt took, when the venue measured it
        (a retried request: not the waits before it); recorded as an `attempt` row that
        long before the answer, where its round trip starts. `measured` without one: the
        venue learnt the outcome by looking the order up, after its request got no
        answer (a `looked_up` row: no round trip)."""
        at = wall_ms()
        if round_trip_ms is not None:
            self._put(("order", ("attempt", at - max(round_trip_ms, 0), copy(order), None)))
        elif measured:
            self._put(("order", ("looked_up", at, copy(order), None)))
        self._put(("order", ("acknowledged", at, copy(order), None)))

    def order_unanswered(self, order: Order) -> None:
        """The request got no answer (retries used up, outcome unknown, never sent): no
        round trip (feeds.replay.round_trip_latencies); its status is recorded."""
        self._put(("order", ("unanswered", wall_ms(), copy(order), None)))

    def order_update(self, update: OrderUpdate) -> None:
        self._put(("order", (str(update.status), wall_ms(), update.order, update)))

    def fill(self, fill: Fill) -> None:
        self._put(("fill", (wall_ms(), fill)))

    def _put(self, item: tuple[str, Any]) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def note(self, **facts: Any) -> None:
        """`facts` learnt during the run (its initial balance, once adopted from the
        exchange), into meta.json now: a run that never closes its capture (a crash, a
        kill) leaves them for its replay too."""
        self._meta.update(facts)
        self._write_meta()

    def close(self, **facts: Any) -> None:
        """Write what is buffered and the final meta.json, with `facts` learnt during the
        run (its initial balance, once adopted from the exchange); idempotent."""
        if self.closed:
            return
        self.closed = True
        self._meta.update(facts)
        self._queue.put(_STOP)
        self._thread.join()
        self._write_meta()

    # -- the writer thread -------------------------------------------------------------
    def _drain(self) -> None:
        try:
            while True:
                kind, payload = self._queue.get()
                if kind == "stop":
                    break
                self._take(kind, payload)
                if max(self._events.rows, len(self._orders["wall_ms"])) >= self._chunk_rows:
                    # the orders too: a run that never closes its capture (a crash) loses
                    # only what came after its last chunks
                    self._flush_orders()
                    self._flush_events()
        except Exception:  # a broken disk must not take the run down: say it once
            log.exception("capture writer failed; the capture of this run is incomplete")
            self._meta["error"] = "writer failed"
            return
        self._flush_events()
        self._flush_orders()

    def _take(self, kind: str, payload: Any) -> None:
        if kind == "events":
            for event in payload:
                self._events.add(event)
                self.counts["events"] += 1
                trades = getattr(event, "trades", None)
                if trades is not None:
                    self.counts["books"] += 1
                    self.counts["trades"] += len(trades)
        elif kind == "warmup":
            self._write_warmup(payload)
        elif kind == "order":
            step, at, order, update = payload
            self._order_row(step, at, order, update, None)
        else:
            at, fill = payload
            self._order_row("fill", at, None, None, fill)

    def _order_row(
        self, step: str, at: int, order: Order | None, update: OrderUpdate | None, fill: Fill | None
    ) -> None:
        self.counts["orders"] += 1
        row: dict[str, Any] = {"wall_ms": at, "step": step}
        if order is not None:
            if update is None:
                row |= {"reason": str(order.status)}
            if step == "open":
                row |= {"filled": order.filled, "avg_price": order.avg_price}
            row |= {"client_id": order.client_id, "symbol": order.symbol,
                    "side": str(order.side), "type": str(order.order_type), "size": order.size,
                    "price": order.price, "created_ts": order.created_ts,
                    "reduce_only": order.reduce_only}  # fmt: skip
        if update is not None:
            row |= {"filled": update.filled, "avg_price": update.avg_price,
                    "reason": update.reason}  # fmt: skip
        if fill is not None:
            row |= {"client_id": fill.client_id, "symbol": fill.symbol, "side": str(fill.side),
                    "fill_ts": fill.ts, "fill_qty": fill.size, "fill_price": fill.price,
                    "fee": fill.fee, "liquidity": str(fill.liquidity)}  # fmt: skip
        for name in ORDER_COLUMNS:
            self._orders[name].append(row.get(name))

    def _flush_events(self) -> None:
        if self._events.rows:
            self._write("events", self._events.take())

    def _flush_orders(self) -> None:
        if self._orders["wall_ms"]:
            columns, self._orders = self._orders, {name: [] for name in ORDER_COLUMNS}
            self._write("orders", columns)

    def _write_warmup(self, candles: Mapping[str, Sequence[Candle]]) -> None:
        """The candles the run started from. A resumed run keeps its start's: the ones it
        warmed up on again closed while it was down (in the capture's gap), and a replay
        of the whole capture starts where the run started."""
        path = self.folder / WARMUP
        if path.exists():
            return
        columns = warmup_columns(candles)
        self.counts["warmup"] = len(columns["ts"])
        self._whole(pa.table(columns, schema=WARMUP_SCHEMA), path)

    def _write(self, table: str, columns: dict[str, list[Any]]) -> None:
        self._chunks[table] += 1
        path = self.folder / f"{table}-{self._chunks[table]:05d}.parquet"
        schema = EVENT_SCHEMA if table == "events" else ORDER_SCHEMA
        self._whole(pa.table(columns, schema=schema), path)

    @staticmethod
    def _whole(table: pa.Table, path: Path) -> None:
        """Whole or not at all: a run killed while writing leaves no file cut short under
        its name (a replay refuses the whole capture for one)."""
        part = path.with_name(path.name + ".part")
        pq.write_table(table, part, compression="zstd")
        os.replace(part, path)

    def _write_meta(self) -> None:
        meta = self._meta | {"counts": dict(self.counts), "dropped": self.dropped,
                             "chunks": dict(self._chunks), "complete": self.closed}  # fmt: skip
        (self.folder / META).write_text(json.dumps(meta, sort_keys=True, indent=1))
