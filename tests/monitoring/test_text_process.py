"""A backtest's run-log and journal lines written by a second process
(monitoring.text_process): the files end with the same bytes as when the main thread
writes them (rotation included, every journal recipe, a portfolio's journal lines), a
short run starts no process, a journal someone listens to stays on the main thread, and
a process that fails or dies is one `LogPathError` line on the main thread. Small
`START_ITEMS` and `FRAME_ITEMS` make the process start and be sent frames within a few
lines."""

import contextlib
import logging
import os
import resource
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perps_bot.domain import Side
from perps_bot.monitoring import journal_lines, text_process
from perps_bot.monitoring.hot_log import EQUITY, FILL, FUNDING, TRADE_CLOSED, HotLog
from perps_bot.monitoring.journal import Journal
from perps_bot.monitoring.logs import BufferedRotatingHandler, LogPathError
from perps_bot.monitoring.text_process import lines_behind
from perps_bot.storage.child_process import ChildProcess

RUN = "20240101T000000-dev-abcdef"
numbers = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
texts = st.text(st.characters(codec="utf-8"), max_size=12)
#: one line each: a per-fill log line of each recipe, a record through the standard
#: logging path
steps = st.lists(
    st.one_of(
        st.tuples(st.just("fill"), st.sampled_from(["", " (replayed)"]), texts, numbers),
        st.tuples(st.just("trade"), st.just(""), texts, st.one_of(st.none(), numbers)),
        st.tuples(st.just("equity"), st.just(""), st.just(""), numbers),
        st.tuples(st.just("funding"), st.just(""), texts, numbers),
        st.tuples(st.just("record"), st.booleans(), texts, numbers),
    ),
    max_size=40,
)


@contextlib.contextmanager
def _files(folder: Path, max_bytes: int = 0) -> Iterator[tuple[HotLog, logging.Logger]]:
    handler = BufferedRotatingHandler(folder / "run.log", max_bytes=max_bytes, backups=9,
                                      tag=f"[{RUN}] ")  # fmt: skip
    logger = logging.getLogger("perps_bot.text_test")
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    try:
        yield HotLog(logger), logger
    finally:
        handler.close()
        logger.handlers = []


def _log(hot: HotLog, logger: logging.Logger, calls: list[Any]) -> None:
    for i, (kind, flag, text, x) in enumerate(calls):
        ts = 1_704_067_200_000 + i * 60_000
        if kind == "fill":
            hot.emit(FILL, (ts, flag, "[a] ", "FILL", text, "buy", 1.5, x, 0.01, -2.0, x, 1.0,
                            0.5, -0.1, 1e5 + x))  # fmt: skip
        elif kind == "trade":
            hot.emit(TRADE_CLOSED, (ts, "", "", text, "long", 2.0, 100.0, 101.0, 3.5, x,
                                    3725.0, "stop"))  # fmt: skip
        elif kind == "equity":
            hot.emit(EQUITY, (ts, "", "", x, -x, 0.25, 0.0, 1e5))
        elif kind == "funding":
            hot.emit(FUNDING, (ts, "", "", text, 0.0001, x, 1.0, -0.5, 1.0, 2.0, 3.0, 4.0, 5.0))
        else:
            (logger.warning if flag else logger.info)("a record %s %r", text, x)


#: a journal line: a recipe's (any of them, with values of the kinds its fields hold),
#: or a plain `write` of a dict; by the run's journal or its portfolio's
journal_steps = st.lists(
    st.tuples(
        st.sampled_from(range(len(journal_lines.TYPES))),
        st.booleans(),
        st.sampled_from([None, "pb-1", 'q"\\é']),
        texts,
        numbers,
        st.one_of(st.none(), st.dictionaries(texts, numbers, max_size=2)),
    ),
    max_size=30,
)


def _journal_args(
    recipe: int, text: str, x: float, note: dict[str, float] | None
) -> tuple[Any, ...]:
    """Values of the recipe's fields: str, float, int, bool, None and the note's dict."""
    args: dict[int, tuple[Any, ...]] = {
        journal_lines.SIGNAL: (text, "buy", x, "why"),
        journal_lines.ORDER: ("pb-1", text, "sell", x, "market", None, x > 0, "new", text,
                              note, None if note is None else x),
        journal_lines.ORDER_UPDATE: ("pb-1", text, "filled", x, -x, "filled"),
        journal_lines.FILL: ("pb-1", text, "buy", x, 2.0, 0.01, "taker", -x, 0.0, text),
        journal_lines.LIQUIDATION: ("pb-2", text, "sell", 1.0, x, 0.5, "taker", x, 0.0, "liq"),
        journal_lines.TRADE_CLOSED: (text, "long", x, 1.0, 2.0, -x,
                                     x / 3 if note is None else None, 1_704_067_200_000, "stop"),
        journal_lines.EQUITY: (1e5 + x, x),
    }  # fmt: skip
    return args[recipe]


def _journal(journals: list[Journal], calls: list[Any]) -> None:
    for i, (recipe, by_portfolio, cid, text, x, note) in enumerate(calls):
        journal = journals[1 if by_portfolio else 0]
        ts = 1_704_067_200_000 + (i // 2) * 60_000
        if note is not None and recipe == journal_lines.EQUITY:  # a plain line
            journal.write("state_change", ts, {"state": text, "detail": note}, cid)
        else:
            journal.emit(recipe, ts, _journal_args(recipe, text, x, note), cid)


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def small_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames of 3 lines; the process starts once 4 are written here (at the 6th)."""
    monkeypatch.setattr(text_process, "START_ITEMS", 4)
    monkeypatch.setattr(text_process, "STARTING_ITEMS", 6)
    monkeypatch.setattr(text_process, "FRAME_ITEMS", 3)


def _run(folder: Path, max_bytes: int, calls: list[Any], *, behind: bool) -> dict[str, bytes]:
    """A run's lines: its start and end written here, what is between them behind or not."""
    with _files(folder, max_bytes) as (hot, logger):
        logger.info("run start")
        with lines_behind([hot], logger) if behind else contextlib.nullcontext():
            _log(hot, logger, calls)
        logger.info("run end")
    return _contents(folder)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(steps, st.sampled_from([0, 700, 3_000]))
@freeze_time("2026-12-04 18:00:00.123", tick=False)
def test_the_process_writes_the_bytes_the_main_thread_writes(
    small_frames: None,
    tmp_path_factory: pytest.TempPathFactory,
    calls: list[Any],
    max_bytes: int,
) -> None:
    """Every per-fill recipe and standard records, rotated or not: the same files, the
    same bytes."""
    inline = _run(tmp_path_factory.mktemp("inline"), max_bytes, calls, behind=False)
    assert _run(tmp_path_factory.mktemp("behind"), max_bytes, calls, behind=True) == inline


def _run_with_journal(folder: Path, calls: list[Any], logged: list[Any], *, behind: bool
                      ) -> dict[str, bytes]:  # fmt: skip
    """A run's journal (and its portfolio's) lines, with run-log lines between them."""
    journal = Journal(folder / "events.jsonl", RUN)
    journals = [journal, journal.for_portfolio(f"{RUN}/a", "a")]
    with _files(folder) as (hot, logger):
        journal.write("run_start", 0, {"profile": "dev"})
        block = lines_behind([hot], logger, journal) if behind else contextlib.nullcontext()
        with block:
            _journal(journals, calls)
            _log(hot, logger, logged)
            _journal(journals, calls)
        journal.write("run_end", 1, {"status": "completed"})
    journal.close()
    return _contents(folder)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(journal_steps, steps)
@freeze_time("2026-12-04 18:00:00.123", tick=False)
def test_the_process_writes_the_journal_lines_the_main_thread_writes(
    small_frames: None, tmp_path_factory: pytest.TempPathFactory, calls: list[Any],
    logged: list[Any],
) -> None:  # fmt: skip
    """Every journal recipe, plain lines, a portfolio's view, between run-log lines: the
    same journal and log bytes, in the same order, before and after the block."""
    inline = _run_with_journal(tmp_path_factory.mktemp("inline"), calls, logged, behind=False)
    behind = _run_with_journal(tmp_path_factory.mktemp("behind"), calls, logged, behind=True)
    assert behind == inline


@freeze_time("2026-12-04 18:00:00.123", tick=False)
def test_an_enum_member_among_the_values_is_written_as_its_value(
    small_frames: None, tmp_path: Path
) -> None:
    """`marshal` refuses a `StrEnum`'s member (a strategy's reason may be one): the frame
    goes as the plain values, and the lines are those written here."""
    calls = [(journal_lines.SIGNAL, False, "pb-1", "x", 1.0, None)] * 8
    got = {}
    for behind in (False, True):
        folder = tmp_path / str(behind)
        folder.mkdir()
        journal = Journal(folder / "events.jsonl", RUN)
        with _files(folder) as (hot, logger):
            block = lines_behind([hot], logger, journal) if behind else contextlib.nullcontext()
            with block:
                _log(hot, logger, [("trade", "", Side.BUY, 1.0)] * 8)
                for i, _ in enumerate(calls):
                    journal.emit(journal_lines.SIGNAL, i, ("BTC", Side.SELL, 1.0, Side.BUY))
        journal.close()
        got[behind] = _contents(folder)
    assert got[True] == got[False]
    assert b'"side":"sell"' in got[True]["events.jsonl"]


@freeze_time("2026-12-04 18:00:00.123", tick=False)
def test_a_round_trip_with_no_return_is_journaled_behind_as_here(
    small_frames: None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`return_pct` is None where the entry notional is not positive: null, both ways."""
    calls = [(journal_lines.TRADE_CLOSED, i % 2 == 0, None, "BTC", 0.0, {"x": 1.0})
             for i in range(12)]  # fmt: skip
    inline = _run_with_journal(tmp_path_factory.mktemp("inline"), calls, [], behind=False)
    behind = _run_with_journal(tmp_path_factory.mktemp("behind"), calls, [], behind=True)
    assert behind == inline
    assert inline["events.jsonl"].count(b'"return_pct":null') == 24


def test_a_file_that_fails_as_it_is_handed_on_leaves_the_journal_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log's file fails its flush as the block starts: the run's later journal lines
    (its end) are still written, by the run."""
    journal = Journal(tmp_path / "events.jsonl", RUN)

    def failing(self: BufferedRotatingHandler, channel: object, number: int = 0) -> None:
        if channel is not None:
            raise OSError(28, "No space left on device")

    with _files(tmp_path) as (hot, logger):
        monkeypatch.setattr(BufferedRotatingHandler, "write_behind", failing)
        with pytest.raises(OSError), lines_behind([hot], logger, journal):
            pass
        journal.write("run_end", 1, {"status": "failed"})
    journal.close()
    assert b'"type":"run_end"' in (tmp_path / "events.jsonl").read_bytes()


def test_a_journal_written_behind_takes_no_listener(small_frames: None, tmp_path: Path) -> None:
    """A listener subscribed while the process writes the lines would see none of them."""
    journal = Journal(tmp_path / "events.jsonl", RUN)
    with _files(tmp_path) as (hot, logger), lines_behind([hot], logger, journal):
        with pytest.raises(RuntimeError, match="listener"):
            journal.subscribe(lambda type_, line: None)
        with pytest.raises(RuntimeError, match="offset"):
            journal.offset()
    journal.subscribe(lambda type_, line: None)  # written here again: it may
    journal.close()


def test_a_journal_someone_listens_to_stays_here(small_frames: None, tmp_path: Path) -> None:
    """The listener sees each line as it is made; the run log still goes behind."""
    journal = Journal(tmp_path / "events.jsonl", RUN)
    seen: list[str] = []
    journal.subscribe(lambda type_, line: seen.append(type_))
    with _files(tmp_path) as (hot, logger), lines_behind([hot], logger, journal) as _:
        for i in range(10):
            journal.emit(journal_lines.EQUITY, i, (1e5, float(i)))
            assert len(seen) == i + 1
        _log(hot, logger, [("equity", "", "", 1.0)] * 10)
    journal.close()
    assert seen == ["equity"] * 10
    assert (tmp_path / "events.jsonl").read_bytes().count(b"\n") == 10


def test_a_journal_the_process_cannot_write_is_one_line_on_the_main_thread(
    small_frames: None, tmp_path: Path, processes: list[ChildProcess]
) -> None:
    """The journal's file capped under the process: its own `LogPathError` line."""
    journal = Journal(tmp_path / "events.jsonl", RUN)
    with (
        _files(tmp_path) as (hot, logger),
        pytest.raises(LogPathError) as full,
        lines_behind([hot], logger, journal),
    ):
        _start_capped(hot, logger, processes)
        for i in range(60):
            journal.emit(journal_lines.SIGNAL, i, ("BTC-PERP", "buy", 1.0, "x" * 50), "pb-1")
    line = str(full.value)
    assert line.startswith("cannot write ") and "events.jsonl" in line, line
    assert "check run.log_dir" in line and "\n" not in line, line
    journal.close()


def _start_capped(hot: HotLog, logger: logging.Logger, processes: list[ChildProcess]) -> None:
    """Five lines written here, then the sixth starts the process with its files capped
    at 2,000 bytes (`RLIMIT_FSIZE`, which it inherits as it starts)."""
    _log(hot, logger, [("record", False, "x", 1.0)] * 5)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2_000, hard))
    try:
        _log(hot, logger, [("record", False, "x", 1.0)])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert processes


def _lines(folder: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in folder.glob("run.log*"))


def test_a_short_run_starts_no_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fewer lines than START_ITEMS: written here (the last frame's when the block ends)."""
    started: list[object] = []
    monkeypatch.setattr(text_process, "ChildProcess", lambda *a, **k: started.append(a))
    with _files(tmp_path) as (hot, logger), lines_behind([hot], logger):
        _log(hot, logger, [("record", False, "x", 1.0), ("equity", "", "", 2.0)])
        assert not (tmp_path / "run.log").read_bytes()  # queued
    assert not started
    text = (tmp_path / "run.log").read_bytes()
    assert text.count(b"\n") == 2 and b"EQUITY | PnL" in text


@pytest.mark.parametrize("long_run", [False, True])
def test_a_long_run_starts_its_process_after_the_first_frame(
    long_run: bool, small_frames: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames of 3: a run known to be long starts the process once the first frame is
    written here; any other at START_ITEMS (4) lines, at the second frame. A process
    that cannot start is tried once (the warning is said once)."""
    started: list[int] = []

    def child(*args: object, **kwargs: object) -> None:
        started.append(_lines(tmp_path))
        raise OSError("not in this test")  # the lines then stay here

    monkeypatch.setattr(text_process, "ChildProcess", child)
    with _files(tmp_path) as (hot, logger), lines_behind([hot], logger, long_run=long_run):
        _log(hot, logger, [("equity", "", "", float(i)) for i in range(20)])
    assert started == ([3] if long_run else [6])
    assert _lines(tmp_path) == 20


def test_where_no_process_can_start_the_lines_are_written_here(
    small_frames: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    def no_process(*args: object, **kwargs: object) -> None:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    monkeypatch.setattr(logging.getLogger("perps_bot"), "propagate", True)
    with _files(tmp_path) as (hot, logger), lines_behind([hot], logger):
        _log(hot, logger, [("equity", "", "", float(i)) for i in range(10)])
    assert _lines(tmp_path) == 10
    assert "no process to write the run log" in caplog.text


def test_a_console_at_info_keeps_the_lines_here(small_frames: None, tmp_path: Path) -> None:
    """Another INFO consumer (a console) gets every line as it is logged: no process."""
    seen: list[str] = []
    with _files(tmp_path) as (_, logger):
        console = logging.Handler(logging.INFO)
        console.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
        logger.addHandler(console)
        hot = HotLog(logger)
        with lines_behind([hot], logger):
            _log(hot, logger, [("equity", "", "", float(i)) for i in range(6)])
            logger.handlers[0].flush()  # the file's buffer: written by this process
            assert len(seen) == 6 and _lines(tmp_path) == 6


@pytest.fixture
def processes(monkeypatch: pytest.MonkeyPatch) -> list[ChildProcess]:
    """The processes text_process starts, for the test to signal."""
    started: list[ChildProcess] = []

    def kept(*args: Any, **kwargs: Any) -> ChildProcess:
        started.append(ChildProcess(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(text_process, "ChildProcess", kept)
    return started


def test_a_full_disk_under_the_process_is_one_line_on_the_main_thread(
    small_frames: None, tmp_path: Path, processes: list[ChildProcess]
) -> None:
    """The process meets the full disk (its file size capped as it starts): the run gets
    one `LogPathError` line naming the log, at a later line or when the block ends."""
    with (
        _files(tmp_path) as (hot, logger),
        pytest.raises(LogPathError) as full,
        lines_behind([hot], logger),
    ):
        _start_capped(hot, logger, processes)
        _log(hot, logger, [("record", False, "y" * 200, 1.0)] * 40)
    line = str(full.value)
    assert "run.log" in line and "check run.log_dir" in line and "\n" not in line, line
    assert (tmp_path / "run.log").stat().st_size <= 2_000


def test_a_process_that_died_is_one_line_on_the_main_thread(
    small_frames: None, tmp_path: Path, processes: list[ChildProcess]
) -> None:
    with (
        _files(tmp_path) as (hot, logger),
        pytest.raises(LogPathError) as stopped,
        lines_behind([hot], logger),
    ):
        _log(hot, logger, [("record", False, "x", 1.0)] * 8)
        os.kill(processes[0].pid, signal.SIGKILL)
        _log(hot, logger, [("record", False, "x", 1.0)] * 20)
    assert "writer process stopped" in str(stopped.value)
    assert "\n" not in str(stopped.value)


def test_the_process_exits_cleanly_once_the_block_ends(
    small_frames: None, tmp_path: Path, processes: list[ChildProcess]
) -> None:
    """Its lines written and its files closed, it leaves with status 0 (without the
    interpreter's teardown, `child_process.leave`)."""
    journal = Journal(tmp_path / "events.jsonl", RUN)
    with _files(tmp_path) as (hot, logger), lines_behind([hot], logger, journal):
        _log(hot, logger, [("record", False, "x", 1.0)] * 20)
        for i in range(20):
            journal.emit(journal_lines.EQUITY, i, (1e5, float(i)))
    journal.close()
    assert processes and processes[0]._proc.returncode == 0
    assert _lines(tmp_path) == 20
    assert (tmp_path / "events.jsonl").read_bytes().count(b"\n") == 20


def test_ctrl_c_does_not_stop_the_process(
    small_frames: None, tmp_path: Path, processes: list[ChildProcess]
) -> None:
    """A run stopped by Ctrl-C still needs the process for its last lines."""
    with _files(tmp_path) as (hot, logger), lines_behind([hot], logger):
        _log(hot, logger, [("record", False, "x", 1.0)] * 6)  # written here; it starts
        assert processes and _lines(tmp_path) == 6
        _log(hot, logger, [("record", False, "x", 1.0)] * 6)  # its first frame
        processes[0].drain()  # written by it: it runs, Ctrl-C ignored
        assert _lines(tmp_path) == 12
        assert os.getpgid(processes[0].pid) != os.getpgid(0)
        os.kill(processes[0].pid, signal.SIGINT)
        _log(hot, logger, [("record", False, "x", 1.0)] * 8)
    assert _lines(tmp_path) == 20
