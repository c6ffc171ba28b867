"""A recorded capture as a feed (SPEC 14): the events an exchange-fed run saw, in the
order and with the receipt times it saw them, on a simulated clock.

The capture folder (storage.capture) holds `meta.json` and numbered Parquet chunks;
each chunk is read whole (its rows are bounded by the writer's chunk size), rebuilt
into events (books with their public trades) and yielded in batches. Nothing is
random here: the same folder always gives the same events.

A capture that cannot be replayed as recorded is one line (FeedError), before the
replay starts: a chunk that is not a readable Parquet file of the capture's columns (a
copy cut short, a disk error), a chunk missing from the numbering, or fewer chunks
than a complete capture's meta.json counts. Replaying around a missing chunk would
show the strategy a market with a hole in it, and the drift report would measure
paper against it as if nothing were missing. A capture that says in its meta.json that
it misses rows (its run never closed it, the recorder dropped items or failed) is
replayed with a warning naming what is missing (`incomplete_warning`).

A live run's captured books hold its own resting orders, and its captured tape its own
prints: the paper venue of its replay matches against them without those
(`matching_view`, feeds.replay_own and feeds.replay_prints).
"""

import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from perps_bot.domain import Candle, MarketEvent, OrderStatus, RunMode, iso_utc, short, short_path
from perps_bot.feeds.base import FeedError
from perps_bot.feeds.replay_own import OwnBookView, own_resting
from perps_bot.feeds.replay_prints import OwnPrints, own_takes
from perps_bot.storage.capture import META, WARMUP
from perps_bot.storage.capture_format import (
    EVENT_SCHEMA,
    ORDER_SCHEMA,
    WARMUP_SCHEMA,
    events_from_rows,
    warmup_from_rows,
)

BATCH = 4_096


def read_meta(folder: Path) -> dict[str, Any]:
    """The capture's description; FeedError (one line) when it is not a capture."""
    path = folder / META
    if not path.is_file():
        raise FeedError(f"no capture at {folder}: {META} is missing")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FeedError(f"capture {folder}: unreadable {META} ({exc})") from exc
    if not isinstance(meta, dict) or "config" not in meta or "instruments" not in meta:
        raise FeedError(f"capture {folder}: {META} does not describe a run")
    for name, (kind, item) in _META_FIELDS.items():
        if name not in meta:
            continue
        value = meta[name]
        items = value.values() if isinstance(value, dict) else value
        if not isinstance(value, kind) or (item and not all(isinstance(v, item) for v in items)):
            what = f"{kind.__name__} of {item.__name__}" if item else kind.__name__
            raise FeedError(f"capture {folder}: {META} field {name} is not a {what}")
    return meta


#: the fields of meta.json a replay reads: their JSON type (and their items')
_META_FIELDS: dict[str, tuple[type, type | None]] = {
    "config": (dict, None),
    "instruments": (dict, dict),
    "run_id": (str, None),
    "symbols": (list, str),
    "counts": (dict, int),
    "chunks": (dict, int),
    "gaps": (list, dict),
}


def incomplete_warning(folder: Path, meta: dict[str, Any]) -> str | None:
    """The warning line for a capture whose meta.json says it misses rows, else None: a
    run that never closed its capture (it crashed, or is still running) lost the rows
    after the last chunk written, a recorder that could not keep up dropped items, and
    a run resumed from its checkpoint (SPEC 9) was down for a while (`gaps`)."""
    down = meta.get("gaps")
    gaps = (
        [_downtime(gap) for gap in down if isinstance(gap, dict)] if isinstance(down, list) else []
    )
    if not meta.get("complete"):
        gaps.append("its run never closed it (crashed or still running): the rows after its"
                    " last chunk are missing")  # fmt: skip
    dropped = meta.get("dropped")
    if isinstance(dropped, int) and dropped > 0:
        gaps.append(f"the recorder dropped {dropped} items")
    if meta.get("error"):
        gaps.append(f"the recorder failed ({short(str(meta['error']))})")
    if not gaps:
        return None
    return f"warning: capture {short_path(folder)} is incomplete: {'; '.join(gaps)}"


def _downtime(gap: dict[str, Any]) -> str:
    """A time the run was down (storage.capture: `gap`), as the warning says it."""
    since, until = gap.get("from"), gap.get("until")
    start = iso_utc(since) if isinstance(since, int) else "its start"
    end = iso_utc(until) if isinstance(until, int) else "?"
    lost = "" if gap.get("closed") else "; the rows its crash left unwritten are missing too"
    return (f"the run was down: resumed at {end} from its checkpoint at {start}, with nothing"
            " captured in between (what it captured from the checkpoint to its stop, it traded"
            f" again from the checkpoint: those orders were rewound){lost}")  # fmt: skip


def chunk_files(folder: Path, table: str) -> list[Path]:
    """The table's chunks in writing order; FeedError when one is missing from the
    numbering (storage.capture writes `<table>-00001.parquet`, `-00002`, ...) or is not
    a Parquet file with the table's columns (module docstring)."""
    files = sorted(folder.glob(f"{table}-*.parquet"))
    schema = EVENT_SCHEMA if table == "events" else ORDER_SCHEMA
    for number, path in enumerate(files, start=1):
        if path.name != f"{table}-{number:05d}.parquet":
            raise FeedError(
                f"capture {short_path(folder)}: {table}-{number:05d}.parquet is missing"
                f" (found {short(path.name)}): the capture has a hole"
            )
        missing = [name for name in schema.names if name not in _read(path, pq.read_schema).names]
        if missing:
            raise FeedError(f"capture {short_path(folder)}: {path.name} has no column {missing[0]}")
    return files


def _read(path: Path, reader: Any, **options: Any) -> Any:
    """`reader(path, ...)` of one chunk; FeedError (one line) when it is unreadable."""
    try:
        return reader(path, **options)
    except (pa.ArrowException, OSError) as exc:
        text = str(exc).strip().splitlines()
        why = short(text[0] if text else type(exc).__name__, 120)
        raise FeedError(f"capture {short_path(path)} is unreadable ({why})") from exc


def _rows(path: Path) -> list[dict[str, Any]]:
    table: pa.Table = _read(path, pq.read_table)
    _check_rows(table, path)
    return table.to_pylist()  # type: ignore[no-any-return]


#: the columns each kind of row needs (storage.capture_format writes them)
_NEEDS: dict[str, tuple[str, ...]] = {
    "book": (), "book_update": (), "trade": ("price", "qty", "taker", "trade_ts"),
    "mark": ("mark",), "funding": ("rate",), "quote": ("bid_px", "ask_px"),
}  # fmt: skip
_LEVELS = (("bid_px", "bid_qty"), ("ask_px", "ask_qty"))


def _check_rows(table: pa.Table, path: Path) -> None:
    """FeedError (one line) naming the first row of the chunk that no capture writes: no
    time or step, an events row of an unknown kind or without a column its kind needs,
    a book level's price without its quantity. Replayed, such a row crashed the run deep
    inside (an internal error) or was left out without a word."""
    if "kind" not in table.column_names:  # an orders chunk
        bad = [("no wall_ms", pc.is_null(table["wall_ms"])),
               ("no step", pc.is_null(table["step"]))]  # fmt: skip
    else:
        kind = table["kind"]
        known = pc.is_in(kind, value_set=pa.array(list(_NEEDS)))
        bad = [("an unknown kind", pc.invert(known)), ("no ts", pc.is_null(table["ts"])),
               ("no symbol", pc.is_null(table["symbol"]))]  # fmt: skip
        for name, needs in _NEEDS.items():
            is_kind = pc.equal(kind, name)
            bad.extend((f"a {name} without {column}", pc.and_(is_kind, pc.is_null(table[column])))
                       for column in needs)  # fmt: skip
        for prices, sizes in _LEVELS:
            counts = [pc.fill_null(pc.list_value_length(table[c]), 0) for c in (prices, sizes)]
            bad.append((f"{prices} and {sizes} of different lengths", pc.not_equal(*counts)))
    for why, mask in bad:
        rows = pc.indices_nonzero(pc.fill_null(mask, True))
        if len(rows):
            raise FeedError(f"capture {short_path(path)}: row {rows[0].as_py() + 1} has {why}"
                            " (not a row the capture writes)")  # fmt: skip


def order_rows(folder: Path) -> list[dict[str, Any]]:
    """The run's order round-trip rows (storage.capture_format), in recording order."""
    rows: list[dict[str, Any]] = []
    for path in chunk_files(folder, "orders"):
        rows.extend(_rows(path))
    return rows


def round_trip_latencies(folder: Path) -> list[int]:
    """Measured latencies (ms) of the run's orders: from the request leaving (the
    answered attempt's, when the capture says: its retries' waits were the client's own)
    to the venue's answer, one per request that was answered (not one whose retries were
    used up, or whose outcome stayed unknown: `unanswered`, or in a capture from before
    that step an acknowledgement with the status `unknown`; nor one whose outcome a
    look-up found: `looked_up`). None for a dry run: its orders go to the paper venue
    inside the bot (the times around that call are 0 ms, no round trip to the
    exchange)."""
    if read_meta(folder).get("kind") == RunMode.DRY_RUN:
        return []
    sent: dict[str, int] = {}
    latencies: list[int] = []
    for row in order_rows(folder):
        cid = row["client_id"]
        # `attempt`: the answered one of a retried request's attempts left then
        if row["step"] == "sent" or (row["step"] == "attempt" and cid in sent):
            sent[cid] = row["wall_ms"]
        elif row["step"] == "acknowledged" and cid in sent:
            start = sent.pop(cid)
            if row["reason"] != OrderStatus.UNKNOWN:  # an older capture's unanswered one
                latencies.append(max(int(row["wall_ms"]) - start, 0))
        elif row["step"] in ("unanswered", "looked_up"):  # no answer: no round trip
            sent.pop(cid, None)
    return latencies


class ReplayFeed:
    """Implements the Feed protocol over a capture folder."""

    simulated = True
    candle_history = False
    mark_extremes = False

    def __init__(self, folder: Path, *, batch_size: int = BATCH) -> None:
        self.folder = folder
        self.meta = read_meta(folder)
        self._files = chunk_files(folder, "events")
        if not self._files:
            raise FeedError(f"capture {folder} has no market data (no events-*.parquet)")
        written = self.meta.get("chunks", {}).get("events")
        if self.meta.get("complete") and isinstance(written, int) and written > len(self._files):
            raise FeedError(
                f"capture {short_path(folder)}: events-{len(self._files) + 1:05d}.parquet is"
                f" missing ({META} counts {written} chunks, {len(self._files)} found)"
            )
        self._batch = batch_size
        self._done = 0
        self._skip = 0  # a resumed replay: the events its checkpoint had seen
        self._view: Callable[[MarketEvent], MarketEvent] | None = None  # matching_view's
        self.total = int(self.meta.get("counts", {}).get("events", 0)) or None
        first = _read(self._files[0], pq.read_table, columns=["ts"]).column("ts")
        if len(first) == 0:
            raise FeedError(f"capture {folder} has no market data")
        self.start_ts = int(first[0].as_py())
        self.symbols: list[str] = list(self.meta.get("symbols") or self.meta["instruments"])
        self._warmup = _warmup(folder)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def state(self) -> int:
        """The events handed out: a checkpoint keeps it (SPEC 9), and the replay it
        resumes goes on with the next one (not from the capture's first again)."""
        return self._done

    def restore_state(self, state: Any) -> None:
        self._done = self._skip = int(state)

    async def batches(self) -> AsyncIterator[Sequence[MarketEvent]]:
        skip, self._skip = self._skip, 0
        for path in self._files:
            rows = _rows(path)
            batch: list[MarketEvent] = []
            for event in events_from_rows(rows):
                if skip:  # seen before the checkpoint: the matching view learns it again
                    skip -= 1
                    if self._view is not None:
                        self._view(event)
                    continue
                batch.append(event)
                if len(batch) >= self._batch:
                    self._done += len(batch)
                    yield batch
                    batch = []
            if batch:
                self._done += len(batch)
                yield batch

    async def warmup_candles(
        self, bars: Mapping[str, int], timeframe_ms: int
    ) -> dict[str, list[Candle]]:
        """The candles the captured run was warmed up with (WarmUpSource): its replay's
        strategies start where the run's did. None for a capture made without."""
        out: dict[str, list[Candle]] = {}
        for symbol, count in bars.items():
            got = [c for c in self._warmup.get(symbol, ()) if c.ts - c.open_time == timeframe_ms]
            if got and count > 0:
                out[symbol] = got[-count:]
        return out

    def events(self) -> list[MarketEvent]:
        """Every event of the capture, in a list (tests; see `iter_events`)."""
        return list(self.iter_events())

    def iter_events(self) -> Iterator[MarketEvent]:
        """Every event of the capture, one chunk in memory at a time (the drift report's
        arrival mids: a week's capture held whole as events takes gigabytes)."""
        for path in self._files:
            yield from events_from_rows(_rows(path))

    def progress(self) -> tuple[int, int | None]:
        return self._done, self.total

    def matching_view(self) -> Callable[[MarketEvent], MarketEvent] | None:
        """The paper venue's matching input (MatchingInput): for a live run's capture,
        its books without the run's own resting orders (feeds.replay_own) and its tape
        without the run's own prints (feeds.replay_prints); None for a dry run's (its
        orders never reached the exchange) or a run without any. The view learns the
        run's prints from the events it is shown: a resumed replay shows it the events
        it skips (`batches`), so it matches against what an uninterrupted one did."""
        if self.meta.get("kind") != RunMode.LIVE:
            return None
        rows = order_rows(self.folder)
        resting, takes = own_resting(rows), own_takes(rows)
        if not resting and not takes:
            return None
        instruments = self.meta["instruments"]
        ticks = {s: float(i.get("tick_size") or 0.0) for s, i in instruments.items()}
        self._view = OwnBookView(resting, ticks, OwnPrints(takes) if takes else None)
        return self._view

    def strategy_bar_ms(self, timeframe: str) -> int | None:
        return None  # ticks: the orchestrator builds the strategy's bars, as live


def _warmup(folder: Path) -> dict[str, list[Candle]]:
    """The capture's warm-up candles per symbol (none for a capture without them);
    FeedError when the file is there but is not the capture's warm-up table."""
    path = folder / WARMUP
    if not path.is_file():
        return {}
    table: pa.Table = _read(path, pq.read_table)
    missing = [name for name in WARMUP_SCHEMA.names if name not in table.column_names]
    if missing:
        raise FeedError(f"capture {short_path(folder)}: {WARMUP} has no column {missing[0]}")
    return warmup_from_rows(table.to_pylist())
