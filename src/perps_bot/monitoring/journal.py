"""`logs/events.jsonl`: one JSON object per event, with run id, simulated timestamp,
an event `type` and correlation ids linking signal -> order -> fill.

`JournalEvent` (monitoring.journal_event) is the pydantic schema of a line (consumers
and the tests validate lines against it). Lines are serialised straight from dicts:
the values come from the orchestrator, already validated, and building a model per
event would cost more than the rest of a backtest's bookkeeping.
Lines are buffered and written in blocks; `flush()` is called after fills and at
the end of the run.

A line is the common fields, then the event's. With no listener the line's dict is
never built: its bytes are the common fields' bytes (`type` and `run_id` once per
type, `ts` and the correlation id once per change: an order's lines share them)
followed by the event's dict serialised alone, its opening brace dropped. orjson
writes a dict compactly, key after key in order, so these are the bytes of the whole
line serialised at once; data that names a common field, or none at all, takes the
dict path.

The recorder's lines of every order and fill are `emit`ted as recipes
(monitoring.journal_lines): the dict is built only where the line is written. While a
backtest's lines are written behind (`write_behind`, monitoring.text_process), a
recipe's values, and any other line's bytes, go to the process in the order they
come, and it writes them with `write_here` into the same file: the same bytes.

Listeners (`subscribe`) see every line as it is written, as a dict: the metrics and
the alerts follow the run through them, with no hook of their own in the loop. A
listener runs on the trading path, so it only counts or queues.
"""

import re
from collections import Counter
from collections.abc import Callable, Collection
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from perps_bot.domain import short_path
from perps_bot.monitoring.journal_lines import BUILDERS, TYPES
from perps_bot.monitoring.logs import LogPathError
from perps_bot.monitoring.text_channel import JOURNAL, JOURNAL_RAW, TextChannel

if TYPE_CHECKING:  # the schema's module loads pydantic: not for the process writing lines
    from perps_bot.monitoring.journal_event import EventType

#: sees each line written: (type, the line with its common fields)
Listener = Callable[[str, dict[str, Any]], None]


class Journal:
    _file: IO[bytes]
    _buffer: list[bytes]
    _limit: int
    _listeners: list[Listener]
    _written: "_Written"
    #: the journals writing this file (this one and its portfolios' views), by number
    _views: "list[Journal]"
    #: the channel to the process writing the lines, while one does (shared by views)
    _behind: list[TextChannel]

    def __init__(
        self,
        path: Path,
        run_id: str,
        *,
        buffer_lines: int = 2_000,
        portfolio: str | None = None,
        sharing: "Journal | None" = None,
    ) -> None:
        """`sharing`: a portfolio's journal (`for_portfolio`) writes into that journal's
        file and buffer. Through `__init__`, not a blank `__new__`: compiled (mypyc), a
        class's `__new__` runs its `__init__`."""
        self._path = path
        self._run_id = run_id
        self._portfolio = portfolio
        self._heads: dict[str, bytes] = {}  # type -> its line's start: type and run id
        self._ids: tuple[int, str | None, bytes] = (-1, None, b"")  # ts, cid -> bytes
        self._cid: tuple[str | None, bytes] = (None, b"null")  # the last id's JSON
        #: what the common fields end with in a portfolio's view
        self._portfolio_json = (
            b"" if portfolio is None else b',"portfolio":' + orjson.dumps(portfolio)
        )
        if sharing is not None:
            self._file, self._buffer, self._limit = sharing._file, sharing._buffer, sharing._limit
            self._listeners, self._written = sharing._listeners, sharing._written
            self._views, self._behind = sharing._views, sharing._behind
            self._number = len(self._views)
            self._views.append(self)
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("ab")
        except OSError as exc:
            raise LogPathError(f"cannot write {short_path(path)}", exc) from exc
        self._buffer = []
        self._limit = buffer_lines
        self._listeners = []
        #: lines already in the file that a resumed run's replay writes again (SPEC 9)
        self._written = _Written()
        self._views, self._behind, self._number = [self], [], 0

    @property
    def path(self) -> Path:
        return self._path

    @property
    def views(self) -> "list[Journal]":
        """The journals writing this file, by number: this one's, then its portfolios'."""
        return self._views

    def view_ids(self) -> list[tuple[str, str | None]]:
        """(run id, portfolio) of each of `views`: how a process makes the same ones."""
        return [(view._run_id, view._portfolio) for view in self._views]

    def may_write_behind(self) -> bool:
        """Whether its lines may be handed on (`write_behind`): not while someone listens
        or a resumed run compares its lines with the file's, which need each line here,
        as it is made."""
        return not (self._listeners or self._written.lines)

    def write_behind(self, channel: TextChannel | None) -> bool:
        """Hand this file's lines (this journal's and its views') to `channel` from now
        on, its buffer written first; None: write them here again, after what the process
        wrote. Refused (False) where `may_write_behind` is False."""
        if channel is not None and not self.may_write_behind():
            return False
        self.flush()
        if channel is None and self._behind:
            self._file.seek(0, 2)  # appended by the process: the end is further on
        self._behind[:] = [] if channel is None else [channel]
        return True

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` with every line this journal (and its portfolio views) writes."""
        if self._behind:  # its lines are made by the process: none would reach it
            raise RuntimeError("a journal cannot take a listener while a process writes it")
        self._listeners.append(listener)

    def for_portfolio(self, run_id: str, portfolio: str) -> "Journal":
        """A journal of one portfolio of this run (SPEC 10): the same file and buffer, its
        lines carry the portfolio's run id and its id. Flushed and closed with this one."""
        return Journal(self._path, run_id, portfolio=portfolio, sharing=self)

    def offset(self) -> int:
        """Where the next line goes in the file, once the buffer is flushed."""
        if self._behind:  # the process appends: this end does not know where
            raise RuntimeError("a journal has no offset while a process writes it")
        self.flush()
        return self._file.tell()

    def skip_written(self, offset: int, run_ids: Collection[str]) -> int | None:
        """A resumed run replays the events after its checkpoint: the lines of `run_ids`
        the stopped run wrote past `offset` (the file's end at that checkpoint) are not
        written again (their listeners still see them), so the file holds each event once.
        Its start and end lines stay; returns the time of the last of them (None: none)."""
        self.flush()
        wanted = {orjson.dumps(run_id) for run_id in run_ids}
        written, raw = self._written, b"\n"
        try:
            with self._path.open("rb") as file:
                file.seek(offset)
                for raw in file:
                    line = raw.rstrip(b"\n")
                    if raw.endswith(b"\n") and _run_id_of(line) in wanted:
                        written.add(line)
        except OSError:
            written.lines.clear()  # removed: nothing to compare with
        if not raw.endswith(b"\n"):  # a line torn by the kill: the next one starts anew
            self._buffer.append(b"")
        return written.until if written.lines else None

    def emit(
        self, recipe: int, ts: int, args: tuple[Any, ...], correlation_id: str | None = None
    ) -> None:
        """The line of `recipe` (monitoring.journal_lines) with these values: written
        here, or its values handed to the process writing the lines."""
        behind = self._behind
        if behind:
            behind[0].add((JOURNAL, self._number, ts, correlation_id, recipe, args))
        else:
            self.write_here(TYPES[recipe], ts, BUILDERS[recipe](*args), correlation_id)

    def write(
        self, type_: "EventType", ts: int, data: dict[str, Any], correlation_id: str | None = None
    ) -> None:
        """One line: written here, or its bytes handed to the process writing the lines
        (after those handed on before it)."""
        behind = self._behind
        if behind:  # nobody listens then (`write_behind`)
            behind[0].add((JOURNAL_RAW, self._raw(type_, ts, data, correlation_id)))
        else:
            self.write_here(type_, ts, data, correlation_id)

    def write_here(
        self, type_: "EventType", ts: int, data: dict[str, Any], correlation_id: str | None = None
    ) -> None:
        """`write` by this process, whoever writes the others."""
        listeners = self._listeners
        if listeners:
            line = self._line(type_, ts, data, correlation_id)
            raw = orjson.dumps(line)
        else:
            raw = self._raw(type_, ts, data, correlation_id)
        buffer = self._buffer
        if not (self._written.lines and self._written.skips(ts, raw)):
            buffer.append(raw)
        for listener in listeners:
            listener(type_, line)
        if len(buffer) >= self._limit:
            self.flush()

    def write_raw(self, raw: bytes) -> None:
        """A line's bytes `write` made while the lines were handed on."""
        buffer = self._buffer
        buffer.append(raw)
        if len(buffer) >= self._limit:
            self.flush()

    def _raw(
        self, type_: "EventType", ts: int, data: dict[str, Any], correlation_id: str | None
    ) -> bytes:
        """The line's bytes (the same as the whole line's: see the module doc)."""
        if type(data) is not dict or not data or _names_common(data):
            return orjson.dumps(self._line(type_, ts, data, correlation_id))
        return b"".join((self._head(type_, ts, correlation_id), orjson.dumps(data)[1:]))

    def _head(self, type_: "EventType", ts: int, correlation_id: str | None) -> bytes:
        """The serialised common fields of a line, up to the comma before the event's."""
        head = self._heads.get(type_)
        if head is None:
            head = self._heads[type_] = orjson.dumps({"type": type_, "run_id": self._run_id})[:-1]
        last_ts, last_cid, ids = self._ids
        if ts != last_ts or correlation_id != last_cid or type(ts) is not int:
            ids = self._ids_json(ts, correlation_id)
            self._ids = (ts, correlation_id, ids)
        return b"".join((head, ids))

    def _ids_json(self, ts: int, correlation_id: str | None) -> bytes:
        """`,"ts":...,"correlation_id":...[,"portfolio":...],`: an int time by `%d`, the
        correlation id's JSON kept from the line before (an order's lines share it);
        orjson's bytes of a dict of them cost twice as much, once a line. A time that
        is no int orjson writes (a float, or an int beyond its 64 bits: its error)."""
        if type(ts) is not int or not _INT_LOW <= ts <= _INT_HIGH:
            fields = {"ts": ts, "correlation_id": correlation_id}
            if self._portfolio is not None:
                fields["portfolio"] = self._portfolio
            return b"".join((b",", orjson.dumps(fields)[1:-1], b","))
        cid, cid_json = self._cid
        if correlation_id != cid or type(correlation_id) is not type(cid):
            cid_json = b"null" if correlation_id is None else orjson.dumps(correlation_id)
            self._cid = (correlation_id, cid_json)
        return b',"ts":%d,"correlation_id":%b%b,' % (ts, cid_json, self._portfolio_json)

    def _line(
        self, type_: "EventType", ts: int, data: dict[str, Any], correlation_id: str | None
    ) -> dict[str, Any]:
        if self._portfolio is not None:
            data = {"portfolio": self._portfolio, **data}
        return {"type": type_, "run_id": self._run_id, "ts": ts,
                "correlation_id": correlation_id, **data}  # fmt: skip

    def flush(self) -> None:
        """Write the buffered lines. A full disk (or any write error) stops the run with
        one line naming the file; the lines that could not be written are dropped, so
        the run's end does not trip over them again."""
        try:
            if self._buffer:
                self._buffer.append(b"")  # the last line's newline
                self._file.write(b"\n".join(self._buffer))
            self._file.flush()
        except OSError as exc:
            raise LogPathError(f"cannot write {short_path(self._path)}", exc) from exc
        finally:
            self._buffer.clear()

    def close(self) -> None:
        self.flush()
        self._file.close()


#: the ints orjson writes (64 bits, signed or not)
_INT_LOW = -(2**63)
_INT_HIGH = 2**64 - 1


def _names_common(data: dict[str, Any]) -> bool:
    """Whether `data` names a field every line starts with (`_line`): five lookups in
    the dict, a third of the instructions of a frozenset's `isdisjoint(data)` (a method
    call that walks every key), once per journal line."""
    return (
        "type" in data
        or "run_id" in data
        or "ts" in data
        or "correlation_id" in data
        or "portfolio" in data
    )


#: the fields of a line that measure wall time: a replayed event differs only in them
_WALL_TIME = re.compile(rb',"latency_ms":[^,}]*')


class _Written:
    """The lines (less their wall-time fields) a stopped run journaled after its
    checkpoint, up to the simulated time `until`: its resumed run replays them."""

    def __init__(self) -> None:
        self.lines: Counter[bytes] = Counter()
        self.until = 0

    def add(self, line: bytes) -> None:
        if line.startswith(b'{"type":"run_'):  # a run's start and end are its own
            return
        try:
            ts = orjson.loads(line)["ts"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return  # not a line of ours
        self.lines[_WALL_TIME.sub(b"", line)] += 1
        self.until = max(self.until, int(ts))

    def skips(self, ts: int, raw: bytes) -> bool:
        """Whether the line is one already written (counted off once)."""
        lines = self.lines
        if ts > self.until:  # past the stop: every later line is new
            lines.clear()
            return False
        key = _WALL_TIME.sub(b"", raw)
        if lines[key] <= 0:
            return False
        lines[key] -= 1
        if not lines[key]:
            del lines[key]
        return True


def _run_id_of(raw: bytes) -> bytes:
    """The JSON-encoded run id of a line (a torn or foreign line: empty)."""
    start = raw.find(b',"run_id":')
    if start < 0:
        return b""
    start += len(b',"run_id":')
    end = raw.find(b',"ts":', start)
    return raw[start:end] if end > 0 else b""


class NullJournal(Journal):
    """A journal with no file (optimisation trials, `run.record: metrics`): no line is
    kept; one is built only for its listeners (a bot run's metrics and alerts), and an
    optimisation trial has none."""

    def __init__(self, run_id: str = "") -> None:
        """No file and no buffer: nothing is kept."""
        self._run_id, self._portfolio = run_id, None
        self._listeners = []
        self._views, self._behind, self._number = [self], [], 0

    def for_portfolio(self, run_id: str, portfolio: str) -> "Journal":
        view = NullJournal(run_id)
        view._portfolio, view._listeners = portfolio, self._listeners
        return view

    def may_write_behind(self) -> bool:
        """Never: it has no file to hand on (`write_behind` refuses a channel)."""
        return False

    def emit(
        self, recipe: int, ts: int, args: tuple[Any, ...], correlation_id: str | None = None
    ) -> None:
        """Nothing is built unless someone listens."""
        if self._listeners:
            self.write(TYPES[recipe], ts, BUILDERS[recipe](*args), correlation_id)

    def write(
        self, type_: "EventType", ts: int, data: dict[str, Any], correlation_id: str | None = None
    ) -> None:
        if self._listeners:
            line = self._line(type_, ts, data, correlation_id)
            for listener in self._listeners:
                listener(type_, line)

    def write_here(
        self, type_: "EventType", ts: int, data: dict[str, Any], correlation_id: str | None = None
    ) -> None:
        self.write(type_, ts, data, correlation_id)

    def write_raw(self, raw: bytes) -> None:
        return None

    def flush(self) -> None:
        return None

    def offset(self) -> int:
        return 0

    def skip_written(self, offset: int, run_ids: Collection[str]) -> int | None:
        return None

    def close(self) -> None:
        return None
