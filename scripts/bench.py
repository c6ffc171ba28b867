"""Benchmark the backtest and the dev profile as a user runs them: whole commands.

What it measures, and why this way:
- `perps-bot backtest` with sma_cross (fast=10, slow=30) on seeded synthetic
  1-minute candles (a geometric random walk), 100k and 500k candles by default.
  Wall time covers everything a user waits for: interpreter start, imports,
  loading and validating the file, the orchestrator, strategy, risk gate,
  ledger and the stored run with its report headline.
- a simulated week of the dev profile (`--profile dev --dev-fast --duration 7d`,
  1-second ticks on two symbols), unless --skip-dev; and the same week with N
  portfolios side by side (`--strategy sma_cross` N times, SPEC 10) for each N of
  --portfolios (default 1,4,8): one event through N portfolios should cost about N
  times one portfolio's strategy work, not N times the whole pipeline.
- the bare start-up cost (`perps-bot --version`), so the per-candle cost can be
  told apart from import time.
- capture overhead (scripts/bench_capture.py): the writer alone on 200k synthetic L2
  updates of 32 symbols (the trading path's enqueue cost, drain rate, bytes per event),
  replay speed on that capture in events/s, and a 32-symbol dry run against the
  emulator with and without the capture (CPU, tick-to-order latency) unless
  --capture-seconds 0.
Each command runs as its own child process, --repeat times; medians are shown.
Peak memory is the child's own maximum resident set size, read with os.wait4
(stdlib only; no psutil, no /usr/bin/time).

Correctness check: an independent numpy computation of the SMA(10)/SMA(30)
crossovers on the same candles predicts the trades (the first cross only sets
the regime; every later cross flips the position and fills at the next candle,
stamped with that candle's close time). The script compares the number, order,
side and time of the backtest's stored fills (SQLite `fills` table) with it.

Bytecode: if the environment sets PYTHONDONTWRITEBYTECODE, every child would
recompile every imported module (seconds per run, not what an installed bot
pays). Unless --cold, the children get a bytecode cache in the work dir
(PYTHONPYCACHEPREFIX) and one unmeasured warm-up run of each command fills it.

With --compare REF the same rows run for this tree and for git revision REF, alternating
run by run, and each row shows the ratio (scripts/bench_compare.py; the optimisation
rows are not compared).

Optimisation: `perps-bot optimize` of sma_cross (fast 5..50, slow 60..200, objective
sharpe) with 200 trials on 100k candles, `-j 2` on local processes and `--ray auto -j 2`
on a local Ray with the same two cores: trials per minute over the trials themselves
(the command's own timer), the whole command's wall time, and a completed trial's cost
in a warm worker against the single backtest command above.

Run: `.venv/bin/python scripts/bench.py [--sizes 100000,500000] [--repeat 3]
[--skip-dev] [--portfolios 1,4,8] [--skip-optimize] [--skip-ray] [--optimize-trials 200]
[--format csv|feather] [--seed 7] [--keep DIR] [--cold] [--compare REF]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.feather as pa_feather
import yaml
from bench_optimize import SYMBOL, StudyRun, optimize_benchmarks

REPO = Path(__file__).resolve().parents[1]
START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
MINUTE = 60_000
FAST, SLOW = 10, 30
DEV_EVENTS_WEEK = 7 * 86_400 * 2  # nominal: 1 s ticks x 2 symbols (funding not counted)


@dataclass(frozen=True)
class Candles:
    open_time: npt.NDArray[np.int64]
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]


@dataclass(frozen=True)
class ChildRun:
    seconds: float
    cpu_seconds: float  # user + system of the child: robust when the machine is busy
    max_rss_mb: float
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Row:
    name: str
    wall: float
    cpu: float
    rss: float
    count: int
    unit: str

    @classmethod
    def of(cls, name: str, runs: list[ChildRun], count: int, unit: str) -> Row:
        return cls(
            name=name,
            wall=median([r.seconds for r in runs]),
            cpu=median([r.cpu_seconds for r in runs]),
            rss=median([r.max_rss_mb for r in runs]),
            count=count,
            unit=unit,
        )


def synthetic_candles(n: int, seed: int) -> Candles:
    """A seeded geometric random walk of 1-minute candles around 100 (about 60%/yr vol)."""
    rng = np.random.default_rng(seed)
    log_ret = rng.normal(0.0, 0.0008, n)
    close = 100.0 * np.exp(np.cumsum(log_ret))
    open_ = np.empty(n)
    open_[0] = 100.0
    open_[1:] = close[:-1]
    wick = np.abs(rng.normal(0.0, 0.0004, (2, n)))
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    volume = rng.lognormal(3.0, 1.0, n)
    open_time = START_MS + np.arange(n, dtype=np.int64) * MINUTE
    return Candles(open_time, open_, high, low, close, volume)


def write_candles(candles: Candles, path: Path) -> None:
    columns = {
        "timestamp": candles.open_time,
        "open": candles.open,
        "high": candles.high,
        "low": candles.low,
        "close": candles.close,
        "volume": candles.volume,
    }
    if path.suffix == ".feather":
        columns["date"] = columns.pop("timestamp")
        table = pa.table(
            {k: columns[k] for k in ("date", "open", "high", "low", "close", "volume")}
        )
        pa_feather.write_feather(table, path)
    else:
        pa_csv.write_csv(pa.table(columns), path)


def expected_trades(candles: Candles) -> tuple[list[tuple[int, str]], npt.NDArray[np.float64]]:
    """(fill time, side) for each sma_cross flip, from numpy alone; plus fast - slow."""
    close = candles.close
    n = close.shape[0]
    csum = np.concatenate(([0.0], np.cumsum(close)))
    diff = np.full(n, np.nan)
    if n >= SLOW:
        fast = (csum[FAST:] - csum[:-FAST]) / FAST  # mean of close[i-FAST+1 .. i] at i=FAST-1..
        slow = (csum[SLOW:] - csum[:-SLOW]) / SLOW
        diff[SLOW - 1 :] = fast[SLOW - FAST :] - slow
    sign = np.sign(diff)
    idx = np.flatnonzero(np.nan_to_num(sign) != 0)  # bars where the averages differ
    signs = sign[idx]
    change = np.flatnonzero(signs[1:] != signs[:-1]) + 1  # crosses after the first regime
    close_time = candles.open_time + MINUTE
    trades = []
    for k in change:
        i = int(idx[k])
        if i + 1 < n:  # the market order fills at the next candle (stamped with its close)
            trades.append((int(close_time[i + 1]), "buy" if signs[k] > 0 else "sell"))
    return trades, diff


def stored_fills(db: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(db) as con:
        row = con.execute("SELECT run_id FROM runs ORDER BY created_at DESC, rowid DESC").fetchone()
        if row is None:
            return []
        fills = con.execute(
            "SELECT ts, side FROM fills WHERE run_id=? ORDER BY seq", (row[0],)
        ).fetchall()
    return [(int(ts), str(side)) for ts, side in fills]


def perps_bot_command() -> list[str]:
    script = Path(sys.executable).with_name("perps-bot")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "perps_bot"]


def write_profile(path: Path) -> Path:
    """The dev profile plus an instrument for the synthetic symbol (tick 0.01, step 0.001,
    no minimum order value): every symbol a run trades needs its instrument."""
    from perps_bot.config import read_profile

    data = read_profile("dev")
    data["instruments"] = {SYMBOL: {"tick_size": 0.01, "step_size": 0.001}}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def backtest_args(cmd: list[str], data: Path, db: str, profile: Path) -> list[str]:
    """`perps-bot backtest` with sma_cross fast/slow on `data`, stored in `db`."""
    return [
        *cmd,
        "backtest",
        "--profile",
        str(profile),
        "--data",
        str(data),
        "--symbol",
        SYMBOL,
        "--strategy",
        "sma_cross",
        "--param",
        f"fast={FAST}",
        "--param",
        f"slow={SLOW}",
        "--db",
        db,
        "--no-progress",
    ]


#: Forks the command from a small process and reports its rusage on the given fd. A child
#: forked straight from this (large) process would report this process's resident set
#: as its own peak: Linux keeps the pre-exec high-water mark in ru_maxrss.
_LAUNCHER = """import os, sys
fd, command = int(sys.argv[1]), sys.argv[2:]
pid = os.fork()
if pid == 0:
    os.close(fd)
    os.execvp(command[0], command)
_, status, usage = os.wait4(pid, 0)
os.write(fd, f"{usage.ru_utime} {usage.ru_stime} {usage.ru_maxrss}".encode())
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_child(args: list[str], env: dict[str, str], cwd: Path = REPO) -> ChildRun:
    """Run one child process; wall time, its CPU time and its own peak RSS (rusage of
    the command, forked by a small launcher)."""
    read_end, write_end = os.pipe()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(write_end), *args],
            stdout=out, stderr=err, env=env, cwd=cwd, pass_fds=(write_end,),
        )  # fmt: skip
        os.close(write_end)
        proc.wait()
        seconds = time.perf_counter() - start
        with os.fdopen(read_end, "rb") as report:
            utime, stime, max_rss_kb = report.read().split()
        out.seek(0)
        err.seek(0)
        return ChildRun(
            seconds=seconds,
            cpu_seconds=float(utime) + float(stime),
            max_rss_mb=int(max_rss_kb) / 1024.0,  # Linux reports KiB
            returncode=proc.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
        )


def repeat(args: list[str], env: dict[str, str], times: int, label: str) -> list[ChildRun]:
    runs = []
    for i in range(times):
        run = run_child(args, env)
        if run.returncode != 0:
            tail = (run.stderr or run.stdout).strip().splitlines()[-3:]
            raise SystemExit(f"{label} failed (exit {run.returncode}): {' | '.join(tail)}")
        print(
            f"  {label} #{i + 1}: {run.seconds:.2f} s wall, {run.cpu_seconds:.2f} s cpu,"
            f" peak {run.max_rss_mb:.0f} MB",
            flush=True,
        )
        runs.append(run)
    return runs


def median(values: list[float]) -> float:
    return statistics.median(values)


def compare(expected: list[tuple[int, str]], got: list[tuple[int, str]], diff: object) -> str:
    if expected == got:
        return f"AGREE: {len(got)} trades, same order, sides and times"
    first = next(
        (i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b),
        min(len(expected), len(got)),
    )
    want = expected[first] if first < len(expected) else None
    have = got[first] if first < len(got) else None
    detail = ""
    if want is not None and isinstance(diff, np.ndarray):
        bar = (want[0] - START_MS) // MINUTE - 2  # the signal candle
        if 0 <= bar < diff.shape[0]:
            detail = f"; fast-slow at the signal bar {diff[bar]:.3e}"
    return (
        f"DISAGREE: numpy {len(expected)} trades, backtest {len(got)} fills;"
        f" first difference at #{first + 1}: numpy {want} vs backtest {have}{detail}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,500000", help="candle counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--skip-dev", action="store_true", help="skip the simulated dev week")
    parser.add_argument(
        "--portfolios", default="1,4,8", help="portfolio counts for the dev week ('' for none)"
    )
    parser.add_argument(
        "--capture-seconds",
        type=int,
        default=20,
        help="length of each 32-symbol dry run of the capture bench (scripts/bench_capture.py);"
        " 0 skips it",
    )
    parser.add_argument("--format", choices=("csv", "feather"), default="csv")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic candles")
    parser.add_argument("--keep", type=Path, default=None, help="keep files in this dir")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="keep the environment's bytecode setting (PYTHONDONTWRITEBYTECODE recompiles"
        " every module in every run) instead of a warm bytecode cache in the work dir",
    )
    parser.add_argument(
        "--compare", metavar="REF", help="also run git revision REF, alternating, with ratios"
    )
    parser.add_argument("--skip-optimize", action="store_true", help="skip the optimize bench")
    parser.add_argument("--skip-ray", action="store_true", help="optimize bench: no Ray run")
    parser.add_argument("--optimize-trials", type=int, default=200, help="trials per study")
    parser.add_argument("--optimize-candles", type=int, default=100_000, help="candles")
    opts = parser.parse_args()
    sizes = [int(s) for s in opts.sizes.split(",") if s.strip()]
    if opts.repeat < 1 or not sizes or min(sizes) < SLOW + 2:
        parser.error("need --repeat >= 1 and sizes >= 32")

    work = opts.keep or Path(tempfile.mkdtemp(prefix="perps-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    profile = write_profile(work / "bench.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPS_BOT__")}
    env["PERPS_BOT__RUN__LOG_DIR"] = str(work / "logs")
    env["PERPS_BOT__RUN__DATA_DIR"] = str(work / "data")
    if not opts.cold:
        # A normal install has .pyc files; without them each child spends seconds
        # compiling. Cache bytecode in the work dir (never in the repo or venv).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    if opts.compare:
        from bench_compare import run_compare  # scripts/ is this script's path

        try:
            return run_compare(opts, work, env)
        finally:
            if opts.keep is None:
                shutil.rmtree(work, ignore_errors=True)
    cmd = perps_bot_command()
    rows: list[Row] = []
    checks: list[str] = []
    try:
        print(f"perps-bot bench: {' '.join(cmd)} (cwd {REPO}, files in {work})", flush=True)
        if not opts.cold:
            warm = work / "warmup.csv"
            write_candles(synthetic_candles(2_000, opts.seed), warm)
            warm_db = str(work / "warmup.sqlite")
            for args in (
                [*cmd, "--version"],
                backtest_args(cmd, warm, warm_db, profile),
                [*cmd, "--profile", "dev", "--dev-fast", "--duration", "1h", "--db", warm_db],
            ):
                repeat(args, env, 1, "warm-up (bytecode cache)")
        startup = repeat([*cmd, "--version"], env, opts.repeat, "startup --version")
        rows.append(Row.of("startup (--version)", startup, 0, "-"))
        for n in sizes:
            candles = synthetic_candles(n, opts.seed)
            path = work / f"candles_{n}.{opts.format}"
            write_candles(candles, path)
            t0 = time.perf_counter()
            trades, diff = expected_trades(candles)
            numpy_seconds = time.perf_counter() - t0
            db = work / f"backtest_{n}.sqlite"
            args = backtest_args(cmd, path, str(db), profile)
            runs = repeat(args, env, opts.repeat, f"backtest {n:,}")
            rows.append(Row.of(f"backtest {n:,} candles", runs, n, "candles/s"))
            verdict = compare(trades, stored_fills(db), diff)
            checks.append(f"{n:,} candles: {verdict} (numpy crossovers in {numpy_seconds:.3f} s)")
        if not opts.skip_optimize:
            single = next((r.wall for r in rows if r.count == opts.optimize_candles), None)
            data = work / "candles_opt.feather"
            write_candles(synthetic_candles(opts.optimize_candles, opts.seed), data)
            backends = [("local -j 2", ["-j", "2"])]
            if not opts.skip_ray:
                backends.append(("ray auto -j 2", ["--ray", "auto", "-j", "2"]))
            checks += optimize_benchmarks(
                StudyRun(cmd, env, work, profile, data, opts.optimize_trials, run_child),
                backends,
                single,
            )
        if not opts.skip_dev:
            db = work / "dev_week.sqlite"
            args = [*cmd, "--profile", "dev", "--dev-fast", "--duration", "7d", "--db", str(db)]
            runs = repeat(args, env, opts.repeat, "dev week")
            rows.append(
                Row.of("dev --dev-fast 7d (2 symbols, 1 s ticks)", runs, DEV_EVENTS_WEEK, "ticks/s")
            )
            for count in [int(c) for c in opts.portfolios.split(",") if c.strip()]:
                several = [*args, *(["--strategy", "sma_cross"] * count)]
                runs = repeat(several, env, opts.repeat, f"dev week, {count} portfolios")
                name = f"dev 7d, {count} portfolio{'s' if count > 1 else ''}"
                rows.append(Row.of(name, runs, DEV_EVENTS_WEEK, "ticks/s"))
    finally:
        if opts.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    print_rows(rows, opts.repeat)
    for line in checks:
        print(line if line.startswith(("optimize", "ray")) else f"sma check, {line}")
    if opts.capture_seconds > 0:
        from bench_capture import run_capture_bench  # scripts/ is this script's path

        print()
        for line in run_capture_bench(opts.capture_seconds, opts.repeat):
            print(line)
    sma = [c for c in checks if not c.startswith(("optimize", "ray"))]
    return 0 if all("AGREE" in c and "DISAGREE" not in c for c in sma) else 1


def print_rows(rows: list[Row], repeat: int) -> None:
    print()
    header = f"{'measurement':<42}{'wall s':>8}{'cpu s':>8}{'rate (wall)':>14}"
    print(f"{header}  {'unit':<10}{'peak MB':>8}")
    for row in rows:
        rate = f"{row.count / row.wall:,.0f}" if row.count else "-"
        print(
            f"{row.name:<42}{row.wall:>8.2f}{row.cpu:>8.2f}{rate:>14}  {row.unit:<10}"
            f"{row.rss:>8.0f}"
        )
    print(
        f"(medians of {repeat} runs; cpu = child's user+system time; peak MB = child's"
        " max RSS via os.wait4)"
    )
    print()


if __name__ == "__main__":
    sys.exit(main())
