"""`logs/events.jsonl`: one JSON object per event, with run id, simulated timestamp,
an event `type` and correlation ids linking signal -> order -> fill.

`JournalEvent` is the pydantic schema of a line (consumers and the tests validate
lines against it). Lines are serialised straight from dicts: the values come from
the orchestrator, already validated, and building a model per event would cost
more than the rest of a backtest's bookkeeping.
Lines are buffered and written in blocks; `flush()` is called after fills and at
the end of the run.
"""

from pathlib import Path
from typing import IO, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict

EventType = Literal[
    "run_start",
    "run_end",
    "signal",
    "denial",
    "order",
    "order_update",
    "order_rejected",
    "fill",
    "funding",
    "liquidation",
    "equity",
    "state_change",
    "reconcile",
    "venue",
]


class JournalEvent(BaseModel):
    """One line of events.jsonl: these common fields, then the type-specific ones."""

    model_config = ConfigDict(frozen=True, extra="allow")

    type: EventType
    run_id: str
    ts: int
    correlation_id: str | None = None


class Journal:
    def __init__(self, path: Path, run_id: str, *, buffer_lines: int = 2_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = path.open("ab")
        self._run_id = run_id
        self._buffer: list[bytes] = []
        self._limit = buffer_lines
        self.count = 0

    def write(
        self, type_: EventType, ts: int, data: dict[str, Any], correlation_id: str | None = None
    ) -> None:
        self._buffer.append(
            orjson.dumps(
                {
                    "type": type_,
                    "run_id": self._run_id,
                    "ts": ts,
                    "correlation_id": correlation_id,
                    **data,
                }
            )
        )
        self.count += 1
        if len(self._buffer) >= self._limit:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._file.write(b"\n".join(self._buffer) + b"\n")
            self._buffer.clear()
        self._file.flush()

    def close(self) -> None:
        self.flush()
        self._file.close()


class NullJournal(Journal):
    """A journal nobody reads (optimisation trials, `run.record: metrics`): every line
    is dropped before it is serialised."""

    def __init__(self) -> None:
        self.count = 0

    def write(
        self, type_: EventType, ts: int, data: dict[str, Any], correlation_id: str | None = None
    ) -> None:
        self.count += 1

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None
