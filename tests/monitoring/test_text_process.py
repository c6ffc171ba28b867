"""A backtest's run-log lines written by a second process (monitoring.text_process):
the files end with the same bytes as when the main thread writes them (rotation
included), a short run starts no process, and a process that fails or dies is one
`LogPathError` line on the main thread. Small `START_ITEMS` and `FRAME_ITEMS` make the
process start and be sent frames within a few lines."""

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

from perps_bot.monitoring import text_process
from perps_bot.monitoring.hot_log import EQUITY, FILL, FUNDING, TRADE_CLOSED, HotLog
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
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    with (
        _files(tmp_path) as (hot, logger),
        pytest.raises(LogPathError) as full,
        lines_behind([hot], logger),
    ):
        _log(hot, logger, [("record", False, "x", 1.0)] * 5)  # written here
        resource.setrlimit(resource.RLIMIT_FSIZE, (2_000, hard))
        try:  # the 6th line starts the process, with the cap
            _log(hot, logger, [("record", False, "x", 1.0)])
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        assert processes
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
