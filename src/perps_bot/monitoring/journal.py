"""`logs/events.jsonl`: one JSON object per event, with run id, simulated timestamp,
an event `type` and correlation ids linking signal -> order -> fill.

Records are pydantic models (the schema consumers rely on) built with
`model_construct` from values the orchestrator already validated: validating
again per event would cost more than the rest of a backtest's bookkeeping.
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
    """One line of events.jsonl; `data` carries the type-specific fields."""

    model_config = ConfigDict(frozen=True)

    type: EventType
    run_id: str
    ts: int
    correlation_id: str | None = None
    data: dict[str, Any]


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
        record = JournalEvent.model_construct(
            type=type_, run_id=self._run_id, ts=ts, correlation_id=correlation_id, data=data
        )
        self._buffer.append(
            orjson.dumps(
                {
                    "type": record.type,
                    "run_id": record.run_id,
                    "ts": record.ts,
                    "correlation_id": record.correlation_id,
                    **record.data,
                },
                option=orjson.OPT_SERIALIZE_NUMPY,
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
