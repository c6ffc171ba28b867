"""`run_coroutine`: a run's result (its whole report) is handed back without asyncio
building its repr on the way out (issue 17: every backtest and optimisation trial paid
for the repr of every round trip)."""

import asyncio
import signal
import threading
from collections.abc import Iterator

import pytest

from perps_bot.orchestrator.run_process import run_coroutine


class Report:
    """Counts its reprs, as a large report would spend them."""

    def __init__(self) -> None:
        self.reprs = 0

    def __repr__(self) -> str:
        self.reprs += 1
        return "Report(...)"


async def _produce(report: Report) -> Report:
    await asyncio.sleep(0)
    return report


@pytest.fixture
def default_sigint() -> Iterator[None]:
    """asyncio installs its SIGINT handler only in the main thread and only over the
    default handler, which an earlier test in the same worker may have replaced."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("asyncio installs its SIGINT handler only in the main thread")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("default_sigint")
def test_asyncio_run_formats_the_result_on_the_way_out() -> None:
    """Why the helper exists: if this stops failing, asyncio no longer does it."""
    report = Report()
    assert asyncio.run(_produce(report)) is report
    assert report.reprs > 0


@pytest.mark.usefixtures("default_sigint")
def test_run_coroutine_hands_the_result_back_without_its_repr() -> None:
    report = Report()
    assert run_coroutine(_produce(report)) is report
    assert report.reprs == 0


def test_run_coroutine_raises_what_the_coroutine_raises() -> None:
    async def broken() -> int:
        raise ValueError("bad profile")

    with pytest.raises(ValueError, match="bad profile"):
        run_coroutine(broken())


def test_run_coroutine_keeps_the_sigint_handler() -> None:
    before = signal.getsignal(signal.SIGINT)
    run_coroutine(_produce(Report()))
    assert signal.getsignal(signal.SIGINT) is before
