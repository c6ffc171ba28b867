"""Trade plan files (SPEC 16): CSV with a header, or JSON (a list of objects with the
same keys), read into validated rows. A bad row is one line naming its row and column
and is left out; the other rows stand. A file that cannot be read at all, or a header
with an unknown column, is a `PlanFileError` (one line).

Columns: `id` (unique: a row runs once; without it the row's content hash is its key),
`symbol`, `side` (long, short, flat), `size` (base units) or `notional` (quote),
`entry` (market, limit; default market), `limit_price`, `stop`, `take_profit`,
`valid_from`, `valid_until` (ISO-8601 UTC), `tag`. Rows are numbered from 1, the first
row after the header (the first object of a JSON list).
"""

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from perps_bot.domain import PerpsBotError, short
from perps_bot.domain.timeutil import parse_iso_ms

COLUMNS = ("id", "symbol", "side", "size", "notional", "entry", "limit_price", "stop",
           "take_profit", "valid_from", "valid_until", "tag")  # fmt: skip
Price = float | None


class PlanFileError(PerpsBotError):
    """The plan file as a whole cannot be used (one line)."""


class PlanRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = None
    symbol: str
    side: Literal["long", "short", "flat"]
    size: float | None = Field(None, gt=0, allow_inf_nan=False)
    notional: float | None = Field(None, gt=0, allow_inf_nan=False)
    entry: Literal["market", "limit"] = "market"
    limit_price: Price = Field(None, gt=0, allow_inf_nan=False)
    stop: Price = Field(None, gt=0, allow_inf_nan=False)
    take_profit: Price = Field(None, gt=0, allow_inf_nan=False)
    valid_from: int | None = None
    valid_until: int | None = None
    tag: str = ""

    @field_validator("id", mode="before")
    @classmethod
    def _whole_number_id(cls, value: Any) -> Any:
        """A JSON plan's `"id": 7` is the id "7", as in a CSV plan (7.5 stays refused)."""
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("side", "entry", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("valid_from", "valid_until", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return parse_iso_ms(value)
            except ValueError:
                raise ValueError("not an ISO-8601 time, e.g. 2024-01-01T00:00:00Z") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "PlanRow":
        if self.side != "flat" and (self.size is None) == (self.notional is None):
            raise _ColumnError("size", "give size or notional (one of them)")
        if self.entry == "limit" and self.limit_price is None:
            raise _ColumnError("limit_price", "a limit entry needs a limit_price")
        if self.stop is not None and self.take_profit is not None:
            wrong = self.stop >= self.take_profit if self.side == "long" else (
                self.side == "short" and self.stop <= self.take_profit)  # fmt: skip
            if wrong:
                raise _ColumnError("stop", f"a {self.side} stop must be on the losing side"
                                   " of the take_profit")  # fmt: skip
        if self.entry == "limit" and self.side != "flat":
            self._around_limit()
        if None not in (self.valid_from, self.valid_until) and (
            self.valid_until <= self.valid_from  # type: ignore[operator]
        ):
            raise _ColumnError("valid_until", "must be after valid_from")
        return self

    def _around_limit(self) -> None:
        """A limit entry's stop on its losing side and its take-profit on its winning
        side: a stop a long enters above would be passed at once (stopped out as soon as
        the entry fills, or refused by the exchange, which halts the portfolio)."""
        limit, sign = self.limit_price, 1.0 if self.side == "long" else -1.0
        assert limit is not None
        where = ("below", "above") if sign > 0 else ("above", "below")
        if self.stop is not None and sign * (self.stop - limit) >= 0:
            raise _ColumnError("stop", f"a {self.side} stop must be {where[0]} its limit_price")
        if self.take_profit is not None and sign * (self.take_profit - limit) <= 0:
            raise _ColumnError("take_profit", f"a {self.side} take_profit must be {where[1]}"
                               " its limit_price")  # fmt: skip

    def key(self) -> str:
        """The row's identity for 'runs once': its id, else a hash of its content."""
        if self.id:
            return f"id:{self.id}"
        content = json.dumps(self.model_dump(), sort_keys=True)
        return "sha1:" + hashlib.sha1(content.encode()).hexdigest()[:16]


class _ColumnError(ValueError):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True, slots=True)
class PlanFile:
    rows: list[PlanRow]
    #: one line per bad row, naming row and column
    problems: list[str]


def read_plan(path: Path, symbols: Iterable[str]) -> PlanFile:
    """The valid rows of the plan at `path` and a line for each bad one."""
    name = short(path.name)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's byte order mark
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PlanFileError(f"plan {name}: cannot read it ({type(exc).__name__})") from None
    raw = _json_rows(name, text) if path.suffix.lower() == ".json" else _csv_rows(name, text)
    known = set(symbols)
    rows: list[PlanRow] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, values in enumerate(raw, start=1):
        problem, row = _row(values, known)
        if row is not None and row.key() in seen:
            problem, row = ("id", f"duplicate id {short(row.id or '')!r}"), None
        if row is None:
            assert problem is not None
            problems.append(f"plan {name} row {number}, column {problem[0]}: {problem[1]}")
            continue
        seen.add(row.key())
        rows.append(row)
    return PlanFile(rows, problems)


def _csv_rows(name: str, text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    if not header:
        raise PlanFileError(f"plan {name}: empty file (a header line is needed)")
    _check_columns(name, header)
    rows = []
    for record in reader:
        if None in record:
            rows.append({"": "more values than columns"})
            continue
        rows.append({k.strip(): v for k, v in record.items() if k is not None})
    return rows


def _json_rows(name: str, text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PlanFileError(f"plan {name}: not valid JSON ({short(str(exc))})") from None
    if not isinstance(data, list):
        raise PlanFileError(f"plan {name}: a JSON plan is a list of objects")
    rows: list[dict[str, Any]] = []
    for item in data:
        if isinstance(item, dict):
            _check_columns(name, [str(k) for k in item])
            rows.append({str(k): v for k, v in item.items()})
        else:
            rows.append({"": "not an object"})
    return rows


def _check_columns(name: str, columns: list[str]) -> None:
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise PlanFileError(f"plan {name}: unknown column {short(unknown[0])!r}"
                            f" (known: {', '.join(COLUMNS)})")  # fmt: skip


def _row(
    values: Mapping[str, Any], symbols: set[str]
) -> tuple[tuple[str, str] | None, PlanRow | None]:
    if "" in values:
        return ("-", str(values[""])), None
    cleaned = {k: (v.strip() if isinstance(v, str) else v) for k, v in values.items()}
    cleaned = {k: v for k, v in cleaned.items() if v not in ("", None)}
    try:
        row = PlanRow.model_validate(cleaned)
    except ValidationError as exc:
        first = exc.errors()[0]
        cause = first.get("ctx", {}).get("error")
        if isinstance(cause, _ColumnError):
            return (cause.column, str(cause)), None
        column = str(first["loc"][0]) if first["loc"] else "-"
        message = str(first["msg"]).removeprefix("Value error, ")
        if column in cleaned:
            message += f" (got {short(repr(cleaned[column]))})"
        return (column, message), None
    if row.symbol not in symbols:
        return ("symbol", f"{short(row.symbol)!r} is not a symbol of this run"
                f" ({', '.join(sorted(symbols))})"), None  # fmt: skip
    return None, row
