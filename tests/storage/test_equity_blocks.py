"""The equity curve's columnar storage: exact round trip, time order, chunking, and the
upgrade of files written with one row per snapshot (schema 1)."""

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perps_bot.storage import RunStore, StoreError
from perps_bot.storage.equity_blocks import BLOCK_ROWS
from perps_bot.storage.migrations import SCHEMA_VERSION

RUN = "run-1"


def _curve(store: RunStore, run_id: str = RUN, chunk: int = 50_000) -> list[tuple[int, ...]]:
    rows: list[tuple[int, ...]] = []
    for part in store.iter_equity(run_id, chunk=chunk):
        assert len(part) <= chunk + BLOCK_ROWS
        rows.extend(
            zip(
                part.ts.tolist(),
                part.equity.tolist(),
                part.cash.tolist(),
                part.unrealized_pnl.tolist(),
                strict=True,
            )
        )
    return rows


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2**62), finite, finite, finite), min_size=0, max_size=60),
    st.integers(1, 7),
)
def test_round_trip_is_exact_and_time_ordered(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[int, float, float, float]],
    flush_every: int,
) -> None:
    path = tmp_path_factory.mktemp("eq") / "db.sqlite"
    with RunStore(path) as store:
        for i, row in enumerate(rows):
            store.add_equity(RUN, *row)
            if i % flush_every == 0:
                store.flush()
    with RunStore(path, read_only=True) as store:
        got = _curve(store, chunk=5)
        first, last, count = store.equity_span(RUN)
    # same values bit for bit, ordered by time; equal times keep their write order
    expected = sorted(rows, key=lambda r: r[0])
    assert [(t, *map(float.hex, v)) for t, *v in got] == [
        (t, *map(float.hex, v)) for t, *v in expected
    ]
    assert count == len(rows)
    if rows:
        assert (first, last) == (expected[0][0], expected[-1][0])
    else:
        assert (first, last) == (None, None)


def test_large_curve_streams_in_chunks_and_runs_stay_apart(tmp_path: Path) -> None:
    n = 3 * BLOCK_ROWS + 17
    with RunStore(tmp_path / "db.sqlite") as store:
        for i in range(n):
            store.add_equity(RUN, 60_000 * i, 1000.0 + i, 1000.0, float(i))
            if i == 5:
                store.add_equity("other", 0, 1.0, 1.0, 0.0)  # switching runs flushes
        store.flush()
        parts = list(store.iter_equity(RUN, chunk=BLOCK_ROWS))
        assert len(parts) >= 3
        ts = np.concatenate([p.ts for p in parts])
        assert ts.tolist() == [60_000 * i for i in range(n)]
        assert np.concatenate([p.unrealized_pnl for p in parts]).tolist() == [
            float(i) for i in range(n)
        ]
        assert store.equity_span("other") == (0, 0, 1)
        assert store.equity_span("missing") == (None, None, 0)


def test_schema_1_file_is_upgraded_with_its_curve(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "INSERT INTO meta VALUES ('schema_version', '1');"
            "CREATE TABLE equity (run_id TEXT NOT NULL, ts INTEGER NOT NULL,"
            " equity REAL NOT NULL, cash REAL NOT NULL, unrealized_pnl REAL NOT NULL);"
        )
        db.executemany(
            "INSERT INTO equity VALUES (?,?,?,?,?)",
            [(RUN, 120, 3.0, 3.0, 0.0), (RUN, 60, 2.0, 2.0, 0.5), (RUN, 120, 4.0, 3.5, 0.5)],
        )
    with RunStore(path, read_only=True) as store:  # a report on an old file works
        assert _curve(store) == [(60, 2.0, 2.0, 0.5), (120, 3.0, 3.0, 0.0), (120, 4.0, 3.5, 0.5)]
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
        version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    assert "equity" not in tables
    assert version == (str(SCHEMA_VERSION),)


def test_file_from_a_newer_version_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    RunStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"UPDATE meta SET value='{SCHEMA_VERSION + 1}' WHERE key='schema_version'")
    with pytest.raises(StoreError, match="newer perps-bot") as err:
        RunStore(path, read_only=True)
    assert "\n" not in str(err.value)
