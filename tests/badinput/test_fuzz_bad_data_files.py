"""Generated bad data files (issue 11): hypothesis breaks a valid candle series in
ONE named way (a bad cell, a bad row or time grid, a file that is not a candle file at
all, a mark or funding file of another period), in CSV, JSON, gzip JSON or Feather,
and `perps-bot backtest` must answer each case with one line under 300 characters and
exit code 2, naming the problem where the class has fixed words. Same scheme as
test_fuzz_bad_inputs.py: one parametrized test per class, EXAMPLES cases each,
derandomized, in this process.
"""

import gzip
import string
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.badinput.harness import EXAMPLES, FUZZ, NON_FINITE_TEXT, check_line
from tests.badinput.inputs import MINUTE, Row, candle_rows, write_rows

HOUR = 3_600_000
# (how to make the case, a fragment its line must contain: "" for none)
Defects = dict[str, tuple[st.SearchStrategy[object], str]]


Edit = Callable[[list[Row]], object]
Writer = Callable[[Path], list[str]]  # writes the files into a folder, returns the flags


@st.composite
def _series(draw: st.DrawFn) -> tuple[list[Row], int]:
    interval = draw(st.sampled_from([MINUTE, 5 * MINUTE, HOUR]))
    start = draw(st.integers(1_400_000_000_000 // interval, 1_900_000_000_000 // interval))
    n = draw(st.integers(20, 80))
    price = draw(st.floats(0.0001, 100_000))
    return candle_rows(n, start * interval, interval, price), interval


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


#: Cell defects: (the columns it may hit, values that are bad there, the line's words).
CELL_DEFECTS: dict[str, tuple[list[int], st.SearchStrategy[object], str]] = {
    "non-finite price": ([1, 2, 3, 4], st.sampled_from(NON_FINITE_TEXT), ""),
    "non-positive price": ([1, 2, 3, 4], st.floats(-1e12, 0) | st.just(0), "non-positive"),
    "huge price": ([1, 2, 3, 4], st.floats(1.01e15, 1e300) | st.just(10**400), ""),
    "bad volume": (
        [5],
        st.sampled_from(NON_FINITE_TEXT) | st.floats(-1e9, -1e-9) | st.floats(1.1e18, 1e300),
        "volume",
    ),
    "not a number": (
        [1, 2, 3, 4, 5],
        st.text(string.ascii_letters, min_size=1, max_size=200).filter(lambda t: not _number(t)),
        "",
    ),
    "bad timestamp": (
        [0],
        st.integers(32_503_680_000_000, 10**30)
        | st.integers(-(10**30), -1)
        | st.sampled_from(["9" * 60, "1e400", "nan", "2024-13-45T00:00:00"]),
        "",  # the words depend on the format (a CSV row, a JSON token)
    ),
}


def _row_edits(i: int, offset: int) -> dict[str, tuple[Edit, str]]:
    """Defects of rows and of the time grid, at row i (0 < i < n - 1)."""

    def ts(row: Row) -> int:
        return int(str(row[0]))

    return {
        "gap": (lambda rows: rows.pop(i), "gap"),
        "unsorted": (lambda rows: rows.insert(i - 1, rows.pop(i)), "not sorted"),
        "conflicting duplicate": (
            lambda rows: rows.insert(i, [*rows[i][:4], rows[i][1], 1.0]),
            "duplicate timestamp",
        ),
        "off the grid": (
            lambda rows: rows[i].__setitem__(0, ts(rows[i]) + offset),
            "not a multiple",
        ),
        "high below close": (
            lambda rows: rows[i].__setitem__(2, float(str(rows[i][4])) * 0.5),
            "high below",
        ),
        "low above open": (
            lambda rows: rows[i].__setitem__(3, float(str(rows[i][1])) * 2),
            "low above",
        ),
        "epoch seconds": (
            lambda rows: [r.__setitem__(0, ts(r) // 1000) for r in rows],
            "epoch seconds",
        ),
        "microseconds": (
            lambda rows: [r.__setitem__(0, ts(r) * 1000) for r in rows],
            "not between 1970-01-01 and 3000-01-01",
        ),
        "one row": (lambda rows: rows.__delitem__(slice(1, None)), "at least 2 rows"),
    }


@st.composite
def _cell_defect(draw: st.DrawFn, kind: str) -> Writer:
    rows, _ = draw(_series())
    columns, values, _ = CELL_DEFECTS[kind]
    rows[draw(st.integers(0, len(rows) - 1))][draw(st.sampled_from(columns))] = draw(values)
    suffix = draw(st.sampled_from([".csv", ".json", ".json.gz"]))
    return lambda folder: ["--data", str(write_rows(folder / f"c{suffix}", rows))]


@st.composite
def _row_defect(draw: st.DrawFn, kind: str) -> Writer:
    rows, interval = draw(_series())
    i, offset = draw(st.integers(1, len(rows) - 2)), draw(st.integers(1, interval - 1))
    _row_edits(i, offset)[kind][0](rows)
    suffixes = [".csv", ".json", ".json.gz"] + (
        [".feather"] if kind != "conflicting duplicate" else []
    )
    suffix = draw(st.sampled_from(suffixes))
    return lambda folder: ["--data", str(write_rows(folder / f"c{suffix}", rows))]


@st.composite
def _broken_file(draw: st.DrawFn, kind: str) -> Writer:
    """Files that are not candle files at all: truncated, binary, empty, wrong header."""
    rows, _ = draw(_series())
    csv_only = kind in ("header only", "wrong header")
    suffix = (
        ".csv" if csv_only else draw(st.sampled_from([".csv", ".json", ".json.gz", ".feather"]))
    )
    cut_at = draw(st.floats(0.05, 0.95))
    blob = draw(st.binary(min_size=1, max_size=2000))
    renamed = draw(st.sampled_from(["open", "high", "low", "close", "volume"]))

    def write(folder: Path) -> list[str]:
        path = write_rows(folder / f"c{suffix}", rows)
        makers: dict[str, Callable[[], bytes]] = {
            "truncated": lambda: _truncated(path.read_bytes(), suffix, cut_at),
            "binary": lambda: b"\xff\x00" + blob,
            "empty": lambda: b"",
            "header only": lambda: b"timestamp,open,high,low,close,volume\n",
            "wrong header": lambda: path.read_bytes().replace(renamed.encode(), b"price", 1),
        }
        path.write_bytes(makers[kind]())
        return ["--data", str(path)]

    return write


def _truncated(data: bytes, suffix: str, at: float) -> bytes:
    """Cut the file inside its content so what is left cannot be whole: CSV inside a row
    before its last field, JSON anywhere (the array never closes), Feather anywhere
    (its framing breaks)."""
    if suffix == ".csv":
        lines = data.split(b"\n")
        i = max(1, int(at * (len(lines) - 2)))
        return b"\n".join(lines[:i]) + b"\n" + lines[i][: lines[i].rindex(b",")] + b"\n"
    if suffix == ".json.gz":
        raw = gzip.decompress(data)
        return gzip.compress(raw[: max(1, int(at * (len(raw) - 1)))])
    return data[: max(1, int(at * (len(data) - 1)))]


@st.composite
def _disjoint(draw: st.DrawFn, which: str) -> Writer:
    """A mark file (candles of another period) or a funding file (hourly rates of
    another period) that covers none of the candles."""
    rows, interval = draw(_series())
    span = len(rows) * interval
    away = draw(st.integers(2 * HOUR, 10**4 * HOUR)) + span
    if which == "--mark":
        start = int(str(rows[0][0])) + draw(st.sampled_from([-1, 1])) * away
        other = candle_rows(len(rows), start // interval * interval, interval, 100.0)
    else:
        start = (int(str(rows[-1][0])) + away) // HOUR * HOUR
        other = [[start + k * HOUR, 0.0001, 0.0, 0.0, 0.0, 0.0] for k in range(10)]

    def write(folder: Path) -> list[str]:
        data = write_rows(folder / "c.csv", rows)
        return ["--data", str(data), which, str(write_rows(folder / "other.csv", other))]

    return write


DATA_DEFECTS: Defects = {
    **{kind: (_cell_defect(kind), words) for kind, (_, _, words) in CELL_DEFECTS.items()},
    **{kind: (_row_defect(kind), words) for kind, (_, words) in _row_edits(1, 1).items()},
    **{
        kind: (_broken_file(kind), "")
        for kind in ("truncated", "binary", "empty", "header only", "wrong header")
    },
    "disjoint mark file": (_disjoint("--mark"), "the mark file covers none of the candles"),
    "disjoint funding file": (_disjoint("--funding"), "the funding file has none of the"),
}


@pytest.mark.parametrize("defect", sorted(DATA_DEFECTS))
@FUZZ
@given(data=st.data())
def test_generated_bad_data_files(workdir: Path, defect: str, data: st.DataObject) -> None:
    strategy, fragment = DATA_DEFECTS[defect]
    write: Writer = data.draw(strategy)  # type: ignore[assignment]
    folder = workdir / "files"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    args = ["backtest", "--symbol", "BTC-PERP", "--strategy", "sma_cross", "--no-progress"]
    env = {"PERPS_BOT__ACCOUNT__FUNDING_INTERVAL": "1h"}  # every series meets a settlement
    check_line(defect, fragment, [*args, *write(folder)], env)


def test_case_counts() -> None:
    """The figures these tests stand for: classes x EXAMPLES generated cases."""
    assert len(DATA_DEFECTS) >= 20
    assert len(DATA_DEFECTS) * EXAMPLES >= 400
