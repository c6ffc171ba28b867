"""`scripts/bench.py --compare REF`: the benchmark for this tree and for another git
revision, side by side in one run, with the ratio of each row.

Why this way: timings taken at different times on a shared machine are not comparable
(other work, thermal state, caches). Here both trees run the same commands on the same
files in alternating order (this tree, REF, this tree, REF, ...), so whatever load the
machine carries falls on both sides alike, and a speed claim is a ratio from one run.

REF is exported with `git archive` into the work dir and run from its own root (its
profiles and files where it expects them) with the same interpreter and environment
(`python -m perps_bot` with PYTHONPATH pointing at each tree's `src/`, for both sides,
so neither pays for a different launcher). Commands a
revision does not have (a flag added later) are shown as failed for that side, not
as an error of the whole benchmark. Each side gets the first profile its warm-up
accepts: the benchmark profile with the synthetic symbol's instrument, else the plain
dev profile (revisions before SPEC 8 had no `instruments` key and took any symbol).
A side whose revision has a compiled hot path (scripts/compile_hot_path.py) gets it
built first, as its `make install` would (`--mode auto`); each side's line at the top
says what it runs (its `perps-bot --version`).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import bench

Args = Callable[["Side", Path], list[str]]  # (side, its db) -> the command


@dataclass
class Side:
    label: str
    root: Path
    env: dict[str, str]
    profile: list[str] = field(default_factory=list)  # ["--profile", ...] chosen at warm-up

    @property
    def cmd(self) -> list[str]:
        return [sys.executable, "-m", "perps_bot"]


@dataclass(frozen=True)
class Measurement:
    name: str
    args: Args
    count: int
    unit: str
    candles: bench.Candles | None = None  # a backtest: check its fills against numpy
    portfolios: int = 0  # a run with several portfolios: check the store has them all


@dataclass
class Result:
    runs: dict[str, list[bench.ChildRun]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)


def export_tree(ref: str, dest: Path) -> tuple[Path, str]:
    """REF's tree in dest (git archive: no worktree left behind); and its short hash."""
    rev = subprocess.run(
        ["git", "rev-parse", "--short", f"{ref}^{{commit}}"],
        cwd=bench.REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if rev.returncode != 0:
        raise SystemExit(f"--compare: {ref!r} is not a revision of this repository")
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev.stdout.strip()],
        cwd=bench.REPO,
        capture_output=True,
        check=True,
    )
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest, rev.stdout.strip()


def build_compiled(root: Path, env: dict[str, str]) -> str:
    """Build a tree's compiled hot path (revisions that have one, scripts/compile_hot_path.py)
    as `make install` would, so both sides run what their own `make run` installs; and
    what that side runs (its `perps-bot --version`)."""
    script = root / "scripts" / "compile_hot_path.py"
    if script.exists():
        subprocess.run([sys.executable, str(script), "--mode", "auto"], cwd=root, env=env,
                       capture_output=True, check=False)  # fmt: skip
    version = subprocess.run([sys.executable, "-m", "perps_bot", "--version"], cwd=root,
                             env=env, capture_output=True, text=True, check=False)  # fmt: skip
    return version.stdout.strip() or "no --version"


def side_env(base: dict[str, str], root: Path) -> dict[str, str]:
    env = dict(base)
    paths = [str(root / "src"), *filter(None, [base.get("PYTHONPATH")])]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def choose_profile(side: Side, work: Path, bench_profile: Path, seed: int) -> None:
    """The first profile this side's warm-up backtest accepts (also fills its bytecode
    cache); the dev profile run of the warm-up too."""
    warm = work / "warmup.csv"
    if not warm.exists():
        bench.write_candles(bench.synthetic_candles(2_000, seed), warm)
    tried = []
    for profile in (str(bench_profile), "dev"):
        db = work / f"warmup-{side.label}.sqlite"
        db.unlink(missing_ok=True)
        args = with_profile(bench.backtest_args(side.cmd, warm, str(db), bench_profile), profile)
        run = bench.run_child(args, side.env, side.root)
        if run.returncode == 0:
            side.profile = ["--profile", profile]
            dev = [*side.cmd, "--profile", "dev", "--dev-fast", "--duration", "1h", "--db"]
            bench.run_child(
                [*dev, str(work / f"warmup-dev-{side.label}.sqlite")], side.env, side.root
            )
            return
        tried.append(last_line(run))
    raise SystemExit(f"--compare: {side.label} runs no backtest: {' | '.join(tried)}")


def with_profile(args: list[str], profile: str) -> list[str]:
    out = list(args)
    out[out.index("--profile") + 1] = profile
    return out


def last_line(run: bench.ChildRun) -> str:
    lines = (run.stderr or run.stdout).strip().splitlines()
    return f"exit {run.returncode}: {lines[-1] if lines else ''}"


def measurements(opts: argparse.Namespace, work: Path, bench_profile: Path) -> list[Measurement]:
    """The rows of bench.py's main table, as commands of a side."""
    rows = [Measurement("startup (--version)", lambda s, _db: [*s.cmd, "--version"], 0, "-")]
    for n in [int(s) for s in opts.sizes.split(",") if s.strip()]:
        candles = bench.synthetic_candles(n, opts.seed)
        path = work / f"candles_{n}.{opts.format}"
        bench.write_candles(candles, path)

        def backtest(side: Side, db: Path, path: Path = path) -> list[str]:
            args = bench.backtest_args(side.cmd, path, str(db), bench_profile)
            return with_profile(args, side.profile[1])

        rows.append(Measurement(f"backtest {n:,} candles", backtest, n, "candles/s", candles))
    if not opts.skip_dev:

        def week(side: Side, db: Path) -> list[str]:
            return [
                *side.cmd,
                "--profile",
                "dev",
                "--dev-fast",
                "--duration",
                "7d",
                "--db",
                str(db),
            ]

        rows.append(Measurement("dev --dev-fast 7d", week, bench.DEV_EVENTS_WEEK, "ticks/s"))
        for count in [int(c) for c in opts.portfolios.split(",") if c.strip()]:

            def several(side: Side, db: Path, count: int = count) -> list[str]:
                return [*week(side, db), *(["--strategy", "sma_cross"] * count)]

            name = f"dev 7d, {count} portfolio{'s' if count > 1 else ''}"
            rows.append(
                Measurement(name, several, bench.DEV_EVENTS_WEEK, "ticks/s", portfolios=count)
            )
    return rows


def measure(m: Measurement, sides: list[Side], work: Path, repeat: int) -> Result:
    """Alternate the sides run by run; a side that fails is dropped from this row."""
    result = Result()
    for i in range(repeat):
        for side in sides:
            if side.label in result.failed:
                continue
            db = work / f"{side.label}-{len(result.runs.get(side.label, []))}.sqlite"
            db.unlink(missing_ok=True)
            run = bench.run_child(m.args(side, db), side.env, side.root)
            wrong = last_line(run) if run.returncode != 0 else missing_portfolios(db, m)
            if wrong:
                result.failed[side.label] = wrong
                print(f"  {m.name} [{side.label}] failed ({result.failed[side.label]})")
                continue
            print(
                f"  {m.name} [{side.label}] #{i + 1}: {run.seconds:.2f} s wall,"
                f" {run.cpu_seconds:.2f} s cpu, peak {run.max_rss_mb:.0f} MB",
                flush=True,
            )
            result.runs.setdefault(side.label, []).append(run)
            if m.candles is not None and side.label not in result.checks:
                trades, diff = bench.expected_trades(m.candles)
                result.checks[side.label] = bench.compare(trades, bench.stored_fills(db), diff)
    return result


def missing_portfolios(db: Path, m: Measurement) -> str:
    """Why a run of several portfolios did not run them all ('' when it did): a revision
    before SPEC 10 takes the last --strategy and runs one."""
    if m.portfolios < 2:
        return ""
    with sqlite3.connect(db) as con:
        columns = {row[1] for row in con.execute("PRAGMA table_info(runs)")}
        if "parent_run_id" not in columns:
            return "no portfolios in this revision (one strategy ran)"
        (n,) = con.execute("SELECT COUNT(*) FROM runs WHERE parent_run_id IS NOT NULL").fetchone()
    return "" if n == m.portfolios else f"{n} portfolios ran, not {m.portfolios}"


def print_table(rows: list[tuple[Measurement, Result]], sides: list[Side]) -> None:
    head, ref = sides
    print()
    print(
        f"{'measurement':<30}{'side':<16}{'wall s':>8}{'cpu s':>8}{'peak MB':>9}"
        f"{'rate (wall)':>22}  {'ratio wall / cpu / MB':<24}"
    )
    for m, res in rows:
        medians: dict[str, bench.Row] = {}
        for side in sides:
            runs = res.runs.get(side.label)
            if not runs:
                print(f"{m.name:<30}{side.label:<16}  failed: {res.failed.get(side.label, '?')}")
                continue
            row = medians[side.label] = bench.Row.of(m.name, runs, m.count, m.unit)
            rate = f"{row.count / row.wall:,.0f} {m.unit}" if row.count else "-"
            print(
                f"{m.name:<30}{side.label:<16}{row.wall:>8.2f}{row.cpu:>8.2f}{row.rss:>9.0f}"
                f"{rate:>22}"
            )
        if head.label in medians and ref.label in medians:
            a, b = medians[head.label], medians[ref.label]
            print(
                f"{'':<30}{'ratio':<16}{'':>8}{'':>8}{'':>9}{'':>22}  "
                f"{a.wall / b.wall:.2f}x / {a.cpu / b.cpu:.2f}x / {a.rss / b.rss:.2f}x"
            )
    print(
        f"(medians of alternating runs; ratio = {head.label} / {ref.label}; below 1 is"
        " faster or smaller)"
    )


def run_compare(opts: argparse.Namespace, work: Path, env: dict[str, str]) -> int:
    ref_root, ref_hash = export_tree(opts.compare, work / "ref")
    sides = [
        Side("this tree", bench.REPO, side_env(env, bench.REPO)),
        Side(ref_hash, ref_root, side_env(env, ref_root)),
    ]
    bench_profile = bench.write_profile(work / "bench.yaml")
    print(f"perps-bot bench --compare: {sides[0].label} vs {sides[1].label}; files in {work}")
    for side in sides:
        runs = build_compiled(side.root, side.env)
        choose_profile(side, work, bench_profile, opts.seed)
        print(f"  {side.label}: profile {side.profile[1]}; {runs}", flush=True)
    started = time.perf_counter()
    rows = [
        (m, measure(m, sides, work, opts.repeat)) for m in measurements(opts, work, bench_profile)
    ]
    print_table(rows, sides)
    print(f"({time.perf_counter() - started:.0f} s of measurements)")
    ok = True
    for m, res in rows:
        for label, verdict in res.checks.items():
            print(f"sma check, {m.name} [{label}]: {verdict}")
            ok = ok and verdict.startswith("AGREE")
    return 0 if ok else 1
