"""Where trials run: local worker processes (`-j N`) or a Ray cluster (`--ray`).

Both backends hold the candles once per worker and take trial specs one by one, so
what a trial costs is the backtest alone. Local: a process pool whose initializer
receives the job and the dataset once (pickled once per worker). Ray: the dataset is
put into the object store once; one actor per worker fetches it (zero-copy numpy)
and runs trials. Results come back in completion order, through `as_completed`-like
iteration; the study tells them in trial order (research.study), so which worker was
faster never changes it.

A trial's outcome depends only on the job, the data and its parameters, never on the
backend: the same trial gives the same metrics everywhere.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol

from perps_bot.config import ConfigError
from perps_bot.feeds.dataset import Dataset
from perps_bot.research.trial import TrialJob, TrialOutcome, TrialSpec, run_trial

DRIVER_POLL_S = 1.0  # how often a local worker looks whether its driver is still there
CONNECT_TIMEOUT_S = 5.0  # a cluster's address that takes no TCP connection within this


class Backend(Protocol):
    """Runs trial specs on `workers` workers; results in completion order."""

    workers: int

    def submit(self, spec: TrialSpec) -> None: ...

    def next_done(self) -> TrialOutcome:
        """Block until a submitted trial is done and return it."""
        ...

    @property
    def pending(self) -> int: ...

    def close(self) -> None: ...


# -- local processes ---------------------------------------------------------------------

_WORKER: tuple[TrialJob, Dataset] | None = None


def _init_worker(job: TrialJob, data: Dataset, driver: int) -> None:
    global _WORKER
    _WORKER = (job, data)
    threading.Thread(target=_end_with, args=(driver,), daemon=True).start()


def _end_with(driver: int) -> None:
    """A worker ends when the process that started it is gone: killed (SIGTERM, a
    scheduler's timeout), it cannot shut the pool down, and its workers would wait on
    their task queue for ever (they hold its writing end themselves)."""
    while os.getppid() == driver:
        time.sleep(DRIVER_POLL_S)
    os._exit(1)


def _run_in_worker(spec: TrialSpec) -> TrialOutcome:
    assert _WORKER is not None, "worker not initialised"
    job, data = _WORKER
    return run_trial(job, data, spec)


class InProcess:
    """`-j 1`: trials run in this process, one at a time (no pickling, easy to debug)."""

    def __init__(self, job: TrialJob, data: Dataset) -> None:
        self.workers = 1
        self._job, self._data = job, data
        self._queue: list[TrialSpec] = []

    def submit(self, spec: TrialSpec) -> None:
        self._queue.append(spec)

    def next_done(self) -> TrialOutcome:
        return run_trial(self._job, self._data, self._queue.pop(0))

    @property
    def pending(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        self._queue.clear()


class LocalProcesses:
    """`-j N`: N worker processes (spawned: a fresh interpreter, no inherited state)."""

    def __init__(self, job: TrialJob, data: Dataset, workers: int) -> None:
        import multiprocessing

        self.workers = workers
        self._pool = cf.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(job, data, os.getpid()),
        )
        self._futures: set[cf.Future[TrialOutcome]] = set()

    def submit(self, spec: TrialSpec) -> None:
        self._futures.add(self._pool.submit(_run_in_worker, spec))

    def next_done(self) -> TrialOutcome:
        done = next(cf.as_completed(self._futures))
        self._futures.discard(done)
        return done.result()

    @property
    def pending(self) -> int:
        return len(self._futures)

    def close(self) -> None:
        for future in self._futures:
            future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)


# -- Ray -----------------------------------------------------------------------------------


class _RayWorker:
    """The actor body: holds the job and the dataset, runs trials."""

    def __init__(self, job: TrialJob, data: Dataset) -> None:
        self._job, self._data = job, data

    def run(self, spec: TrialSpec) -> TrialOutcome:
        return run_trial(self._job, self._data, spec)


class RayCluster:
    """`--ray auto` (a local Ray started here) or `--ray ray://HOST:PORT` / `HOST:PORT`
    (an existing cluster). The dataset goes into the object store once."""

    def __init__(self, job: TrialJob, data: Dataset, address: str, workers: int) -> None:
        if address == "auto":  # a Ray of this machine alone: loopback addresses only
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        ray = import_ray()
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            _init_ray(ray, address, workers)
        cpus = int(ray.cluster_resources().get("CPU", workers))
        self.workers = workers if workers > 0 else max(cpus, 1)
        job_ref, data_ref = ray.put(job), ray.put(data)
        actor = ray.remote(num_cpus=1)(_RayWorker)
        self._actors = [actor.remote(job_ref, data_ref) for _ in range(self.workers)]
        self._idle = list(self._actors)
        self._queue: list[TrialSpec] = []
        self._running: dict[Any, Any] = {}  # object ref -> actor

    def submit(self, spec: TrialSpec) -> None:
        self._queue.append(spec)
        self._dispatch()

    def _dispatch(self) -> None:
        while self._queue and self._idle:
            actor = self._idle.pop()
            ref = actor.run.remote(self._queue.pop(0))
            self._running[ref] = actor

    def next_done(self) -> TrialOutcome:
        ready, _ = self._ray.wait(list(self._running), num_returns=1)
        ref = ready[0]
        self._idle.append(self._running.pop(ref))
        self._dispatch()
        outcome: TrialOutcome = self._ray.get(ref)
        return outcome

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._running)

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors.clear()
        if self._started:
            self._ray.shutdown()


def import_ray() -> Any:
    """The optional Ray package, or one line saying how to get it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            '--ray needs the optional Ray package: pip install "perps-bot[ray]"'
        ) from None
    return ray


def _init_ray(ray: Any, address: str, workers: int) -> None:
    """`auto`: a local Ray on this machine's cores (-j of them); otherwise connect."""
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    try:
        if address == "auto":
            cpus = workers or os.cpu_count()
            # "local": a new Ray of its own, never one a `ray start` left on this machine
            ray.init(address="local", num_cpus=cpus, _node_ip_address="127.0.0.1", **quiet)
        else:  # the cluster's nodes run perps-bot installed like this one
            _check_reachable(address)
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        text = " ".join(str(exc).split())[:200]
        raise ConfigError(f"--ray {address}: cannot connect to the Ray cluster: {text}") from None


def _check_reachable(address: str) -> None:
    """Something must listen at a cluster's HOST:PORT: Ray's own connect retries an
    address where nothing does for about a quarter of an hour (`ray://` for half a
    minute, with a warning), deaf to SIGTERM meanwhile. An address without a port is
    left to Ray."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except (OSError, OverflowError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConnectionError(f"nothing answers at {host}:{port} ({reason})") from None


@contextlib.contextmanager
def ray_session(address: str | None, workers: int) -> Iterator[None]:
    """Connect (or start a local Ray) once for several studies (the windows of a
    walk-forward): their backends then share it; disconnected at the end."""
    if address is None:
        yield
        return
    if address == "auto":
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = import_ray()
    _init_ray(ray, address, workers)
    try:
        yield
    finally:
        ray.shutdown()


def make_backend(job: TrialJob, data: Dataset, *, jobs: int, ray: str | None) -> Backend:
    if ray is not None:
        return RayCluster(job, data, ray, jobs)
    if jobs <= 1:
        return InProcess(job, data)
    return LocalProcesses(job, data, jobs)


def iterate(backend: Backend) -> Iterator[TrialOutcome]:
    """Every outcome still pending, in completion order."""
    while backend.pending:
        yield backend.next_done()
