"""What a run owns in its process unless it is hosted (the session server's process owns
them for all its runs): the SIGINT / SIGTERM handlers and the garbage collector's
settings, set for as long as the run lasts and put back afterwards.
"""

import asyncio
import contextlib
import gc
import signal
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # the run's orchestrator; this module needs only its request_stop
    from perps_bot.orchestrator.engine import Orchestrator


T = TypeVar("T")

#: the stop reason of Ctrl-C / SIGTERM (and of a session server that stops): the run
#: is `interrupted` with no further detail
INTERRUPTED = "interrupted"


def run_coroutine(main: Coroutine[Any, Any, T], *, debug: bool = False) -> T:
    """`asyncio.run(main)`, without building the repr of what `main` returns.

    In the main thread asyncio.run installs a SIGINT handler, a partial holding the
    main task, and on the way out restores the old one through `signal.signal`, which
    looks the partial up in the `Handlers` enum; the failed lookup formats its repr,
    with the finished task's result in full: a run's whole report (every round trip),
    0.1 s at 100k candles and growing with the trades, paid by every backtest and
    every optimisation trial. Here the task finishes with None and the result is
    handed over beside it."""
    box: list[T] = []

    async def kept() -> None:
        box.append(await main)

    asyncio.run(kept(), debug=debug)
    return box[0]


class Signals:
    """SIGINT / SIGTERM for the whole run: before the orchestrator exists a signal
    cancels the start-up; then the first asks the orchestrator to stop cleanly and a
    second one aborts."""

    def __init__(self) -> None:
        self.task = asyncio.current_task()
        self.orchestrator: Orchestrator | None = None
        self.received = 0

    def __call__(self) -> None:
        self.received += 1
        if self.orchestrator is not None and self.received == 1:
            self.orchestrator.request_stop(INTERRUPTED, interrupt=True)
        elif self.task is not None:
            self.task.cancel()


@contextlib.asynccontextmanager
async def signals_handled(install: bool) -> AsyncIterator[Signals]:
    """`install`: False in a hosted run (its process handles the signals)."""
    handler = Signals()
    loop = asyncio.get_running_loop()
    installed: list[tuple[signal.Signals, Any]] = []
    for sig in (signal.SIGINT, signal.SIGTERM) if install else ():
        previous = signal.getsignal(sig)
        try:
            loop.add_signal_handler(sig, handler)
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
            continue
        installed.append((sig, previous))
    try:
        yield handler
    finally:
        for sig, previous in installed:
            loop.remove_signal_handler(sig)
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(sig, previous)


@contextlib.contextmanager
def collector_tuned() -> Iterator[None]:
    """Run with the cyclic garbage collector out of the hot path.

    The loop allocates short-lived, acyclic objects per event (candles, fills,
    tuples) that reference counting frees at once; the default collector still
    traverses the young generation every 700 allocations and, every so often, every
    tracked object of the process (modules, config, the strategy ...). That was about
    8% of a backtest. Objects that exist when the run starts are frozen (never
    traversed again), and the young generation is collected every 50,000 net
    allocations instead of 700: cycles, which are rare here, are still collected.
    The previous settings are restored afterwards (tests run many bots in one
    process)."""
    thresholds = gc.get_threshold()
    freeze = gc.get_freeze_count() == 0  # an embedding program's own freeze is left alone
    if freeze:
        gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if freeze:
            gc.unfreeze()
