"""Data files read ahead (feeds.prefetch): the rows are those of a plain read, a file
changed since is read again, and a bad file says what it said without the read ahead."""

import os
from pathlib import Path

import numpy as np
import pytest

from perps_bot.feeds import FeedError, prefetch
from perps_bot.feeds.readers import RawRows, read_rows

REQUIRED = ("open", "high", "low", "close")
HEADER = "timestamp,open,high,low,close,volume\n"


def _csv(path: Path, rows: int, base: float = 100.0) -> Path:
    lines = [f"{1704067200000 + k * 60_000},{base + k},{base + k + 1},{base + k - 1},"
             f"{base + k + 0.5},{k}\n" for k in range(rows)]  # fmt: skip
    path.write_text(HEADER + "".join(lines))
    return path


def _same(a: RawRows, b: RawRows) -> bool:
    return (
        a.name == b.name
        and np.array_equal(a.ts, b.ts)
        and a.columns.keys() == b.columns.keys()
        and all(np.array_equal(a.columns[k], b.columns[k]) for k in a.columns)
    )


def test_a_file_read_ahead_gives_the_rows_of_a_plain_read(tmp_path: Path) -> None:
    path = _csv(tmp_path / "btc.csv", 500)
    plain = read_rows(path, required=REQUIRED)
    prefetch.prefetch([path])
    table = prefetch.take(path)
    assert table is not None and table.num_rows == 500  # it was read ahead
    prefetch.prefetch([path])
    assert _same(read_rows(path, required=REQUIRED), plain)  # ... and used by the read
    assert prefetch.take(path) is None  # once


def test_a_file_changed_after_the_read_ahead_is_read_again(tmp_path: Path) -> None:
    path = _csv(tmp_path / "btc.csv", 50)
    prefetch.prefetch([path])
    prefetch.take(path)  # the first read ahead is done; read ahead again, then change it
    prefetch.prefetch([path])
    before = os.stat(path).st_mtime_ns
    _csv(path, 60, base=200.0)
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))
    rows = read_rows(path, required=REQUIRED)
    assert rows.ts.shape[0] == 60 and rows.columns["open"][0] == 200.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HEADER + "1704067200000,100,101,99,oops,1\n", "row 1: close 'oops' is not a number"),
        ("nothing,here\n1,2\n", "no time column"),
    ],
)
def test_a_bad_file_read_ahead_says_what_it_says_without(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(FeedError) as plain:
        read_rows(path, required=REQUIRED)
    prefetch.prefetch([path])
    with pytest.raises(FeedError) as ahead:
        read_rows(path, required=REQUIRED)
    assert str(ahead.value) == str(plain.value)
    assert message in str(plain.value)
