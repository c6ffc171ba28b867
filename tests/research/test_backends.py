"""The same trial gives the same metrics on every backend: in this process, in local
worker processes and on Ray (a local Ray, and a Ray head started with `ray start`
that the optimisation is submitted to by address)."""

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from perps_bot.cli.market_data import backtest_settings, load_dataset
from perps_bot.research.backends import InProcess, LocalProcesses, RayCluster, iterate
from perps_bot.research.trial import TrialJob, TrialOutcome, TrialSpec

SPECS = [TrialSpec(0, {"fast": 5, "slow": 40}), TrialSpec(1, {"fast": 12, "slow": 60})]


def job_and_data(data: Path) -> tuple[TrialJob, object]:
    dataset = load_dataset(profile="dev", symbols=["BTC-PERP"], data=[data])
    settings = backtest_settings("dev", dataset, strategy="sma_cross", record="metrics")
    return TrialJob(settings), dataset


def outcomes(backend: InProcess | LocalProcesses | RayCluster) -> dict[int, TrialOutcome]:
    try:
        for spec in SPECS:
            backend.submit(spec)
        return {o.number: o for o in iterate(backend)}
    finally:
        backend.close()


def same(a: dict[int, TrialOutcome], b: dict[int, TrialOutcome]) -> None:
    assert sorted(a) == sorted(b) == [0, 1]
    for number in a:
        assert a[number].error is None and b[number].error is None
        assert a[number].metrics == b[number].metrics  # every metric, exactly
        assert a[number].moments == b[number].moments
        assert a[number].steps == b[number].steps
    assert a[0].metrics != a[1].metrics  # two parameter sets that trade differently


def test_worker_processes_give_the_metrics_of_this_process(workdir: Path, two_days: Path) -> None:
    job, data = job_and_data(two_days)
    here = outcomes(InProcess(job, data))  # type: ignore[arg-type]
    there = outcomes(LocalProcesses(job, data, workers=2))  # type: ignore[arg-type]
    same(here, there)


@pytest.mark.integration
def test_a_local_ray_gives_the_metrics_of_local_processes(workdir: Path, two_days: Path) -> None:
    job, data = job_and_data(two_days)
    local = outcomes(LocalProcesses(job, data, workers=2))  # type: ignore[arg-type]
    on_ray = outcomes(RayCluster(job, data, "auto", workers=2))  # type: ignore[arg-type]
    same(local, on_ray)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def ray_head() -> Iterator[tuple[str, dict[str, str]]]:
    """A Ray head on 127.0.0.1 (`ray start --head --block` in a process group of its
    own, with a token of its own); stopped through the process this fixture started."""
    ray = Path(sys.executable).with_name("ray")
    temp = Path(tempfile.mkdtemp(prefix="rayt", dir="/tmp"))  # short: unix socket paths
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # node address 127.0.0.1
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(32),
    )
    port = _free_port()
    args = [str(ray), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
            "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}",
            f"--ray-client-server-port={_free_port()}"]  # fmt: skip
    head = subprocess.Popen(args, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert head.poll() is None, "ray start exited"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}", env
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops what it started
        try:
            head.wait(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):  # anything left of our group
                os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.integration
def test_optimize_submits_to_a_running_ray_head_by_address(
    workdir: Path, two_days: Path, ray_head: tuple[str, dict[str, str]]
) -> None:
    address, env = ray_head
    results = workdir / "ray.json"
    args = [sys.executable, "-m", "perps_bot", "optimize", "--data", str(two_days),
            "--symbol", "BTC-PERP", "--strategy", "sma_cross", "--space", "fast=int:2:20",
            "--space", "slow=int:25:90", "--objective", "total_pnl", "--trials", "4",
            "--ray", address, "-j", "2", "--study", "on-ray", "--no-store",
            "--json", str(results)]  # fmt: skip
    done = subprocess.run(args, env=env | {"PERPS_BOT__RUN__DATA_DIR": str(workdir / "data")},
                          capture_output=True, text=True, timeout=120, cwd=workdir)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(results.read_text())["counts"] == {"complete": 4}

    # each trial's metrics are those of the same parameters run here
    study = optuna.load_study(
        study_name="on-ray", storage=f"sqlite:///{workdir}/data/studies.sqlite"
    )
    job, data = job_and_data(two_days)
    here = InProcess(job, data)  # type: ignore[arg-type]
    for trial in study.trials:
        here.submit(TrialSpec(trial.number, dict(trial.params)))
    mine = {o.number: o.metrics for o in iterate(here)}
    assert {t.number: t.user_attrs["metrics"] for t in study.trials} == mine


@pytest.mark.integration
@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_a_ray_address_nothing_answers_at_is_one_line_and_exit_2(
    workdir: Path, two_days: Path, scheme: str
) -> None:
    """Ray's own connect retries an address where nothing listens for about a quarter
    of an hour (and ignores SIGTERM meanwhile): `--ray 127.0.0.1:PORT` hung instead of
    saying it cannot connect."""
    address = f"{scheme}127.0.0.1:{_free_port()}"  # closed again: nothing listens there
    args = [sys.executable, "-m", "perps_bot", "optimize", "--data", str(two_days),
            "--symbol", "BTC-PERP", "--strategy", "sma_cross", "--space", "fast=int:2:20",
            "--trials", "2", "--ray", address, "--no-store"]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=workdir)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1 and "cannot connect" in done.stderr, done.stderr
    assert f"--ray {address}" in done.stderr, done.stderr
    assert not (workdir / "data" / "studies.sqlite").exists()  # no study begun


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        with contextlib.suppress(OSError):
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z":
                alive.append(pid)
    return alive


def _spawned_workers(pid: int, wanted: int) -> list[int]:
    """The worker processes `pid` spawned, once there are `wanted` of them (30 s at most):
    on a loaded machine one worker can run the first trials while the other still starts."""
    deadline = time.monotonic() + 30
    while True:
        workers = [p for p in _children(pid)
                   if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]  # fmt: skip
        if len(workers) >= wanted or time.monotonic() > deadline:
            return workers
        time.sleep(0.1)


@pytest.mark.integration
def test_the_worker_processes_end_with_a_killed_optimize(workdir: Path, two_days: Path) -> None:
    """`optimize -j 2` stopped by SIGTERM (a scheduler's timeout, `kill`) left its two
    worker processes waiting on their task queue for ever."""
    args = [sys.executable, "-m", "perps_bot", "optimize", "--data", str(two_days),
            "--symbol", "BTC-PERP", "--strategy", "sma_cross", "--space", "fast=int:2:20",
            "--objective", "total_pnl", "--trials", "100000", "-j", "2", "--no-store"]  # fmt: skip
    driver = subprocess.Popen(args, cwd=workdir, stdout=subprocess.PIPE, text=True,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    workers: list[int] = []
    try:
        assert driver.stdout is not None
        for line in driver.stdout:  # the workers run trials
            if line.startswith("[2/"):
                break
        workers = _spawned_workers(driver.pid, 2)
        assert len(workers) == 2
        driver.terminate()
        driver.wait(timeout=30)
        deadline = time.monotonic() + 20
        while _alive(workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _alive(workers) == [], "the workers outlived the optimize that started them"
    finally:
        for pid in [driver.pid, *_alive(workers)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        driver.wait()
