"""A store whose full batches a writer process writes (`write_behind`, a backtest's
store): the same rows as one written inline, reads that see every row sent before
them, and a failure of the process that is one line on the main thread and fails later
writes. Small `batch_rows` make the batches the process is sent."""

import logging
import os
import resource
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perps_bot.domain import Fill, Liquidity, RunMode, Side
from perps_bot.orchestrator.modes import MODES
from perps_bot.storage import RunStore
from perps_bot.storage.connection import StoreFault
from perps_bot.storage.writer_process import WriterProcess

RUN = "run-1"
SYMBOL = "BTC-PERP"

prices = st.floats(1.0, 1e6, allow_nan=False, allow_infinity=False)
#: one store call each: a fill, a funding payment, an equity snapshot, a position, a flush
steps = st.lists(
    st.one_of(
        st.tuples(st.just("fill"), st.sampled_from(list(Side)), prices),
        st.tuples(st.just("funding"), prices, prices),
        st.tuples(st.just("equity"), st.integers(0, 2**40), prices),
        st.tuples(st.just("position"), prices, prices),
        st.tuples(st.just("flush"), st.just(0), st.just(0)),
    ),
    max_size=40,
)


def _replay(store: RunStore, calls: list[tuple[object, ...]]) -> None:
    for i, (kind, a, b) in enumerate(calls):
        if kind == "fill":
            assert isinstance(a, Side) and isinstance(b, float)
            fill = Fill(i, SYMBOL, a, 0.5, b, 0.1, Liquidity.TAKER, f"c{i}", f"k{i}")
            store.add_fill(RUN, fill, realized_pnl=1.5, position_after=a.sign, entry_after=b)
        elif kind == "funding":
            assert isinstance(a, float) and isinstance(b, float)
            store.add_funding(RUN, i, SYMBOL, 0.0001, a, 1.0, b)
        elif kind == "equity":
            assert isinstance(a, int) and isinstance(b, float)
            store.add_equity(RUN, a, b, b / 2, -b / 3)
        elif kind == "position":
            assert isinstance(a, float) and isinstance(b, float)
            store.set_position(RUN, SYMBOL, a, b, i)
        else:
            store.flush()


def _rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(path) as con:
        tables = ("fills", "funding", "positions", "equity_blocks")
        rows = {t: con.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in tables}
    con.close()
    return rows


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps, st.integers(1, 6))
def test_the_writer_process_stores_what_an_inline_store_stores(
    tmp_path_factory: pytest.TempPathFactory, calls: list[tuple[object, ...]], batch: int
) -> None:
    folder = tmp_path_factory.mktemp("behind")
    with RunStore(folder / "inline.sqlite", batch_rows=batch) as inline:
        _replay(inline, calls)
    with RunStore(folder / "behind.sqlite", batch_rows=batch) as behind:
        behind.write_behind()
        _replay(behind, calls)
    assert _rows(folder / "behind.sqlite") == _rows(folder / "inline.sqlite")


def _fill(i: int) -> Fill:
    return Fill(i, SYMBOL, Side.BUY, 1.0, 100.0 + i, 0.1, Liquidity.TAKER, f"c{i}", "k")


def test_a_read_sees_every_row_sent_before_it(tmp_path: Path) -> None:
    with RunStore(tmp_path / "db.sqlite", batch_rows=100) as store:
        store.write_behind()
        for i in range(250):  # two batches handed over, written while this goes on
            store.add_fill(RUN, _fill(i), realized_pnl=0.0, position_after=1, entry_after=1)
        assert store.execute("SELECT COUNT(*) FROM fills") == [(200,)]
        store.flush()  # the rest, here
        assert store.execute("SELECT COUNT(*) FROM fills") == [(250,)]


def test_a_failed_batch_is_one_line_and_fails_every_later_write(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    RunStore(path).close()
    writer = WriterProcess(path)
    try:
        writer.send([("INSERT INTO no_such_table VALUES (?)", [(1,)])])
        funding = [(RUN, 1, SYMBOL, 0, 1, 1, 1)]
        writer.send([("INSERT INTO funding VALUES (?,?,?,?,?,?,?)", funding)])
        with pytest.raises(StoreFault, match="no such table: no_such_table") as failed:
            writer.drain()
        assert str(path) in str(failed.value) and "\n" not in str(failed.value)
        writer.drain()  # raised once: what reads after it find is what was written
        with pytest.raises(StoreFault, match="no such table"):
            writer.send([])
    finally:
        writer.close()
    with sqlite3.connect(path) as con:  # the batch after the failed one was not written
        assert con.execute("SELECT COUNT(*) FROM funding").fetchone() == (0,)
    con.close()


def test_a_writer_process_that_died_fails_the_store_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = RunStore(path, batch_rows=1)
    store.write_behind()
    store.add_funding(RUN, 1, SYMBOL, 0.0001, 100.0, 1.0, 0.01)
    assert store.execute("SELECT COUNT(*) FROM funding") == [(1,)]
    behind = store._behind  # the process this test kills
    assert behind is not None
    os.kill(behind.pid, signal.SIGKILL)
    with pytest.raises(StoreFault, match="writer process stopped") as stopped:
        # may still reach the pipe: then the loss shows at the next statement
        store.add_funding(RUN, 2, SYMBOL, 0.0001, 100.0, 1.0, 0.01)
        store.execute("SELECT COUNT(*) FROM funding")
    assert "\n" not in str(stopped.value)
    with pytest.raises(StoreFault, match="writer process stopped"):
        store.finish_run(RUN, status="completed", start_ts=0, end_ts=1, error_lines=0,
                         warning_lines=0)  # fmt: skip
    assert store.execute("SELECT COUNT(*) FROM funding") == [(1,)]  # reads go on
    store.close()  # the fault was said once; closing says it no more


def test_ctrl_c_does_not_stop_the_writer_process(tmp_path: Path) -> None:
    """A run stopped by Ctrl-C stops gracefully and still needs its writer to store the
    last rows (the terminal's SIGINT does not reach its process group; a SIGINT sent to
    it all the same is ignored)."""
    with RunStore(tmp_path / "db.sqlite", batch_rows=1) as store:
        store.write_behind()
        store.add_funding(RUN, 1, SYMBOL, 0.0001, 100.0, 1.0, 0.01)
        assert store.execute("SELECT COUNT(*) FROM funding") == [(1,)]
        behind = store._behind  # the process this test signals
        assert behind is not None
        assert os.getpgid(behind.pid) != os.getpgid(0)
        os.kill(behind.pid, signal.SIGINT)
        store.add_funding(RUN, 2, SYMBOL, 0.0001, 100.0, 1.0, 0.01)
        assert store.execute("SELECT COUNT(*) FROM funding") == [(2,)]


def test_a_short_run_starts_no_writer_process(tmp_path: Path) -> None:
    """Its rows never fill half a batch: no process is started, they are written here."""
    path = tmp_path / "db.sqlite"
    with RunStore(path, batch_rows=10) as store:
        store.write_behind()
        for i in range(4):
            store.add_funding(RUN, i, SYMBOL, 0.0001, 100.0, 1.0, 0.01)
        assert store._behind is None  # what this test looks for
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT COUNT(*) FROM funding").fetchone() == (4,)
    con.close()


def test_a_writer_process_sent_nothing_is_stopped_not_waited_for(tmp_path: Path) -> None:
    """Started at half a batch, the run ended before the batch was full: the process
    is stopped (and reaped) at once, while it may still be starting."""
    path = tmp_path / "db.sqlite"
    store = RunStore(path, batch_rows=10)
    store.write_behind()
    for i in range(6):
        store.add_funding(RUN, i, SYMBOL, 0.0001, 100.0, 1.0, 0.01)
    behind = store._behind  # the process this test looks for
    assert behind is not None
    store.close()
    with pytest.raises(ProcessLookupError):
        os.kill(behind.pid, 0)
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT COUNT(*) FROM funding").fetchone() == (6,)
    con.close()


def test_where_no_process_can_start_the_rows_are_written_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_process(*args: object, **kwargs: object) -> None:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    # a CLI run earlier in this process may have stopped the bot's logger propagating
    monkeypatch.setattr(logging.getLogger("perps_bot"), "propagate", True)
    with RunStore(tmp_path / "db.sqlite", batch_rows=2) as store:
        store.write_behind()
        for i in range(5):
            store.add_funding(RUN, i, SYMBOL, 0.0001, 100.0, 1.0, 0.01)
        assert store._behind is None  # what this test looks for
        assert store.execute("SELECT COUNT(*) FROM funding") == [(4,)]
    assert "no writer process" in caplog.text and "written here" in caplog.text


def test_a_store_in_memory_keeps_writing_inline() -> None:
    with RunStore(":memory:") as store:
        store.write_behind()  # no file a second process could open
        store.add_funding(RUN, 1, SYMBOL, 0.0001, 100.0, 1.0, 0.01)
        store.flush()
        assert store.execute("SELECT COUNT(*) FROM funding") == [(1,)]


def test_a_full_disk_under_the_writer_process_is_the_inline_line_and_keeps_what_was_written(
    tmp_path: Path,
) -> None:
    """The writer process meets the full disk (its file size capped as it starts): the
    run's next statement raises the line an inline write gives, later writes fail with
    it, and the batches written before it stay."""
    path = tmp_path / "db.sqlite"
    store = RunStore(path, batch_rows=1_000)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    largest = max(p.stat().st_size for p in tmp_path.iterdir())  # the file or its WAL
    resource.setrlimit(resource.RLIMIT_FSIZE, (largest + 300_000, hard))
    try:
        store.write_behind()
        for i in range(600):  # buffered; at half a batch the process starts, with the cap
            store.add_funding(RUN, i, SYMBOL, 0.0001, 100.0, 1.0, 0.01)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert store._behind is not None  # the process this test caps
    for i in range(600, 1_000):  # a batch, written
        store.add_funding(RUN, i, SYMBOL, 0.0001, 100.0, 1.0, 0.01)
    assert store.execute("SELECT COUNT(*) FROM funding") == [(1_000,)]
    with pytest.raises(StoreFault) as full:
        for i in range(20_000):  # batches of 100 kB: the third meets the cap
            store.add_denial(RUN, i, SYMBOL, "MAX_LEVERAGE", "x" * 40, f"k{i}")
        store.execute("SELECT COUNT(*) FROM funding")
    line = str(full.value)
    assert line.startswith(f"database {path}: ") and "\n" not in line, line
    assert "disk is full" in line or "cannot read or write the file" in line, line
    store.add_funding(RUN, 2, SYMBOL, 0.0001, 100.0, 1.0, 0.01)
    with pytest.raises(StoreFault, match="database"):
        store.flush()
    with pytest.raises(StoreFault, match="database"):
        store.close()  # its rows cannot be stored: said again, as inline
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT COUNT(*) FROM funding").fetchone() == (1_000,)
        (denials,) = con.execute("SELECT COUNT(*) FROM denials").fetchone()
        assert denials % 1_000 == 0 and denials < 20_000, denials  # whole batches
    con.close()


def test_only_runs_that_need_no_row_on_disk_before_they_end_write_behind() -> None:
    """Money: a run that sends real orders stores each fill as it is known, and a run
    that checkpoints needs its rows with the checkpoint; neither hands them over."""
    behind = [row for row in MODES.values() if row.writes_behind]
    assert [row.mode for row in behind] == [RunMode.BACKTEST]
    for row in behind:
        assert not row.real_orders and not row.resumable and row.simulated is True


def test_a_writer_process_exits_cleanly_once_its_input_ends(tmp_path: Path) -> None:
    """Its last batch committed and its connection closed, it leaves with status 0
    (without the interpreter's teardown, `child_process.leave`)."""
    path = tmp_path / "db.sqlite"
    store = RunStore(path, batch_rows=4)
    store.write_behind()
    for i in range(30):
        store.add_funding(RUN, i, SYMBOL, 0.0001, 100.0, 1.0, 0.01)
    behind = store._behind
    assert behind is not None
    store.close()
    assert behind._proc.returncode == 0
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT COUNT(*) FROM funding").fetchone() == (30,)
    con.close()
