"""Valid inputs to break: every float setting of the config, a valid candle series and
the files it is written to. The fuzz and table tests inject ONE defect into these, so
every generated case is bad input for certain (a valid file is not a test case)."""

import gzip
import json
import types
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import pyarrow as pa
import pyarrow.feather as feather
from pydantic import BaseModel

from perps_bot.config import Settings

Setter = Callable[[object], object]
Row = list[object]  # [ts, open, high, low, close, volume]; cells may be text tokens
HEADER = "timestamp,open,high,low,close,volume"
MINUTE = 60_000


def _is_float(annotation: object) -> bool:
    if annotation is float:
        return True
    if get_origin(annotation) is Annotated:
        return _is_float(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_is_float(arg) for arg in get_args(annotation) if arg is not type(None))
    return False


def _model(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def float_settings() -> list[tuple[str, Setter]]:
    """(dotted path, how to put a value there) for every float the config reads:
    plain fields, dict values (key BTC-PERP), union members (strategy params) and each
    element of a maintenance tier. Found by walking the models, so a float field added
    later is covered without editing this list."""
    return sorted(_walk(Settings, ()), key=lambda item: item[0])


def _walk(model: type[BaseModel], path: tuple[str, ...]) -> Iterator[tuple[str, Setter]]:
    for name, field in model.model_fields.items():
        yield from _field(field.annotation, (*path, name))


def _field(annotation: object, path: tuple[str, ...]) -> Iterator[tuple[str, Setter]]:
    nested = _model(annotation)
    if nested is not None:
        yield from _walk(nested, path)
    elif _is_float(annotation):
        yield ".".join(path), lambda value: value
    elif get_origin(annotation) is dict:
        yield from _field(get_args(annotation)[1], (*path, "BTC-PERP"))
    elif get_origin(annotation) in (Union, types.UnionType):
        for arg in get_args(annotation):
            if arg is not type(None):
                yield from _field(arg, path)
    elif get_origin(annotation) is list and get_origin(get_args(annotation)[0]) is tuple:
        for i in range(len(get_args(get_args(annotation)[0]))):
            yield f"{'.'.join(path)}[{i}]", _tier_with(i)


def _tier_with(index: int) -> Setter:
    def setter(value: object) -> object:
        tier: list[object] = [0.0, 0.01, 0.0]
        tier[index] = value
        return [tier]

    return setter


def nested(path: str, value: object) -> dict[str, Any]:
    """{"a": {"b": value}} for "a.b" (a tier index suffix is part of the value)."""
    keys = path.split("[")[0].split(".")
    data: dict[str, Any] = {keys[-1]: value}
    for key in reversed(keys[:-1]):
        data = {key: data}
    return data


def candle_rows(n: int, start: int, interval: int, price: float) -> list[Row]:
    """A valid series: n candles on the grid, prices moving a little around `price`."""
    rows: list[Row] = []
    for i in range(n):
        o = price * (1 + 0.001 * ((i * 7) % 5 - 2))
        c = price * (1 + 0.001 * ((i * 3) % 5 - 2))
        rows.append([start + i * interval, o, max(o, c) * 1.001, min(o, c) * 0.999, c, 10.0 + i])
    return rows


def write_rows(path: Path, rows: Sequence[Row]) -> Path:
    """Write rows in the format the suffix names (.csv, .json, .json.gz, .feather).
    Text cells go into CSV verbatim and into JSON as raw tokens (e.g. NaN, 1e400)."""
    name = path.name
    if name.endswith(".csv"):
        path.write_text(HEADER + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    elif name.endswith((".json", ".json.gz")):
        body = "[" + ",".join("[" + ",".join(_json_cell(c) for c in r) + "]" for r in rows) + "]"
        data = body.encode()
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    elif name.endswith(".feather"):
        columns = list(zip(*rows, strict=True))
        table = pa.table(
            {
                "date": pa.array([int(str(t)) for t in columns[0]], pa.int64()),
                **{k: pa.array([float(str(v)) for v in columns[i + 1]]) for i, k in enumerate(
                    ("open", "high", "low", "close", "volume")
                )},
            }
        )  # fmt: skip
        feather.write_feather(table, str(path))
    else:
        raise ValueError(name)
    return path


#: Non-finite text as the JSON literals Python's json module writes and reads.
_JSON_LITERALS = {"nan": "NaN", "inf": "Infinity", "+inf": "Infinity", "-inf": "-Infinity"}


def _json_cell(cell: object) -> str:
    if isinstance(cell, str):
        return _JSON_LITERALS.get(cell.lower(), cell)
    if isinstance(cell, float) and cell != cell:
        return "NaN"
    return json.dumps(cell)
