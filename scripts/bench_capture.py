"""Capture and replay benchmarks (SPEC 14), run by scripts/bench.py (or alone).

- **Capture overhead.** A 32-symbol canary dry run against the loopback emulator
  (other participants on, a step every 100 ms, market data streamed by websocket, a
  strategy that flips every symbol's position every few books), once with the capture
  and once without, alternately, `repeat` times each. Per run: the bot process's CPU
  time (user + system, its own rusage) and the tick-to-order latency of every order:
  wall-clock ms when the orchestrator hands the order to the venue minus the receipt
  time of the book that triggered it (the order's creation time).
- **Replay speed.** `perps-bot replay` of the last capture, as a child process: the
  capture's events over the child's wall time (start-up included).

The emulator runs in its own child process; so does every bot, so no measurement
includes another's work (they do share the machine's cores).

Alone: `.venv/bin/python scripts/bench_capture.py [--seconds 20] [--repeat 2]`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from perps_bot.domain import BookSnapshot, MarketEvent, PublicTrade, Side, Signal, TargetPosition
from perps_bot.strategies import NO_SIGNALS, Strategy, StrategyContext

REPO = Path(__file__).resolve().parents[1]
SYMBOLS = [f"Q{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(32)]  # QAA .. QBF
STEP_S = 0.25  # the emulator's price step
POLL = "500ms"  # the bot's REST poll: book, ticker, premium index and trades per symbol


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- child: the emulator ------------------------------------------------------------------
async def serve_emulator(port: int) -> None:
    from perps_emulator import EmulatorServer

    server = EmulatorServer(
        port=port,
        symbols=tuple(f"{s}USDT" for s in SYMBOLS),
        seed=3,
        initial_balance=1e6,
        tick_interval_s=STEP_S,
        microstructure=True,
    )
    async with server:
        print("ready", flush=True)
        await asyncio.Event().wait()


# -- child: one dry run -------------------------------------------------------------------
class ChurnParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    every: int = 5


class Churn(Strategy):
    """Flips each symbol between long one order size and flat every `every` books."""

    name = "churn"
    Params = ChurnParams
    params: ChurnParams

    def __init__(self, params: Mapping[str, Any], ctx: StrategyContext) -> None:
        super().__init__(params, ctx)
        self.books: dict[str, int] = {}

    def on_event(self, event: MarketEvent) -> Sequence[Signal]:
        if type(event) is not BookSnapshot:
            return NO_SIGNALS
        n = self.books[event.symbol] = self.books.get(event.symbol, 0) + 1
        if n % self.params.every:
            return NO_SIGNALS
        long = (n // self.params.every) % 2 == 1
        size = self.ctx.order_size(event.symbol) if long else 0.0
        return (TargetPosition(event.symbol, size, reason="churn"),)


def run_bot_child(url: str, seconds: int, capture: bool, work: Path) -> dict[str, Any]:
    from perps_bot.config import load_settings
    from perps_bot.orchestrator import engine
    from perps_bot.orchestrator.runner import run_bot_sync

    latencies: list[float] = []
    submit = engine.Orchestrator._submit

    async def timed(self: Any, order: Any, portfolio: Any) -> None:
        latencies.append(time.time() * 1000.0 - order.created_ts)
        await submit(self, order, portfolio)

    engine.Orchestrator._submit = timed  # type: ignore[method-assign]
    settings = load_settings("canary", {
        "run": {"dry_run": True, "duration": f"{seconds}s", "live_view": False,
                "symbols": [f"{s}-PERP" for s in SYMBOLS], "capture": capture,
                "log_dir": str(work / "logs"), "data_dir": str(work / "data"),
                "database": str(work / f"bench-{int(capture)}.sqlite"), "log_level": "WARNING"},
        "exchange": {"base_url": url, "poll_interval": POLL},
        "strategy": {"name": "scripts.bench_capture:Churn", "params": {"every": 5},
                     "default_order_size": 0.1, "order_size": {}},
        "risk": {"max_orders_per_minute": 100_000, "stale_after": "10s"},
    })  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_SELF)
    result = run_bot_sync(settings, progress=False)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    meta_path = work / "data" / "captures" / result.run_id / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return {"cpu": cpu, "orders": len(latencies), "latencies": latencies, "run_id": result.run_id,
            "events": meta.get("counts", {}).get("events"), "dropped": meta.get("dropped"),
            "capture_bytes": sum(p.stat().st_size for p in meta_path.parent.glob("*"))
            if meta_path.exists() else 0}  # fmt: skip


# -- the writer alone, and a large capture to replay -------------------------------------
def synthetic_books(n: int, seed: int = 7) -> list[list[BookSnapshot]]:
    """Batches of 64 books of the 32 symbols, 50 ms apart per batch, as an L2 stream
    looks: 20 levels a side, three of whose sizes change per update, the price moving a
    tick in one update out of ten, 0 to 3 public trades each."""
    rng = np.random.default_rng(seed)
    mids = dict.fromkeys(SYMBOLS, 100.0)
    sizes = {s: rng.uniform(5, 50, 40).round(2) for s in SYMBOLS}
    batches, batch = [], []
    ts = 1_760_000_000_000
    for i in range(n):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        if rng.random() < 0.1:
            mids[symbol] = round(mids[symbol] + 0.01 * rng.choice((-1, 1)), 2)
        mid, size = mids[symbol], sizes[symbol]
        size[rng.integers(40, size=3)] = rng.uniform(5, 50, 3).round(2)
        bids = [(round(mid - 0.01 * (k + 1), 2), float(size[k])) for k in range(20)]
        asks = [(round(mid + 0.01 * (k + 1), 2), float(size[20 + k])) for k in range(20)]
        trades = tuple(
            PublicTrade(ts, bids[0][0], 1.0, Side.SELL) for _ in range(int(rng.integers(4)))
        )
        batch.append(BookSnapshot(ts, f"{symbol}-PERP", bids, asks, last=mid, mark=mid,
                                  trades=trades))  # fmt: skip
        if len(batch) == 64:
            batches.append(batch)
            batch, ts = [], ts + 50
    return batches


def capture_meta() -> dict[str, Any]:
    """A replayable description: the canary profile trading the synthetic symbols."""
    from perps_bot.config import load_settings
    from perps_bot.domain import Instrument
    from perps_bot.storage.capture import instrument_config

    settings = load_settings("canary", {
        "run": {"dry_run": True, "symbols": [f"{s}-PERP" for s in SYMBOLS]},
        "strategy": {"name": "scripts.bench_capture:Churn", "params": {"every": 5},
                     "default_order_size": 0.1, "order_size": {}},
        "risk": {"max_orders_per_minute": 100_000},
    })  # fmt: skip
    instruments = {
        f"{s}-PERP": instrument_config(
            Instrument(
                f"{s}-PERP", f"{s}/USDT:USDT", 0.01, 0.01, 0.01, 5.0, ((0.0, 0.01, 0.0),), 2.0, 5.0
            )
        )
        for s in SYMBOLS
    }
    return {"run_id": "bench-synthetic", "kind": "dry_run", "profile": "canary",
            "strategy": "scripts.bench_capture:Churn", "strategy_params": {"every": 5},
            "symbols": [f"{s}-PERP" for s in SYMBOLS], "instruments": instruments,
            "config": settings.masked_dict()}  # fmt: skip


def writer_bench(folder: Path, events: int) -> dict[str, float]:
    """The capture writer on synthetic books: what the trading path pays per batch
    (enqueue), how fast the writer thread drains, the bytes per event."""
    from perps_bot.storage.capture import CaptureWriter

    batches = synthetic_books(events)
    # the books stand for what an exchange sends over time: they are not all alive at
    # once in a run, so the collector is kept from traversing them (as the bot's own
    # run loop freezes what exists at its start)
    gc.freeze()
    writer = CaptureWriter(folder, capture_meta(), max_queued=len(batches) + 1)
    cpu0 = time.process_time()
    started = time.perf_counter()
    costs = []
    for batch in batches:
        t = time.perf_counter_ns()
        writer.events(batch)
        costs.append(time.perf_counter_ns() - t)
    writer.close()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    gc.unfreeze()
    n = sum(len(b) for b in batches)
    size = sum(p.stat().st_size for p in folder.glob("*"))
    return {"events": n, "enqueue_us_p50": statistics.median(costs) / 1e3,
            "enqueue_us_p99": percentile(costs, 0.99) / 1e3, "drain_s": wall,
            "cpu_s": cpu, "bytes_per_event": size / n, "dropped": writer.dropped}  # fmt: skip


# -- the parent ---------------------------------------------------------------------------
def child(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, check=False)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run_capture_bench(seconds: int = 20, repeat: int = 2, events: int = 200_000) -> list[str]:
    """Measure capture overhead and replay speed; returns the report lines."""
    work = Path(tempfile.mkdtemp(prefix="perps-bench-capture-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPS_BOT__")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    try:
        lines = writer_lines(work, events, env)
        if seconds > 0:
            lines += dry_run_lines(work, seconds, repeat, env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return lines


def writer_lines(work: Path, events: int, env: dict[str, str]) -> list[str]:
    folder = work / "synthetic"
    w = writer_bench(folder, events)
    started = time.perf_counter()
    done = child([str(Path(sys.executable).with_name("perps-bot")), "replay", "--capture",
                  str(folder), "--db", str(work / "replay.sqlite")], env)  # fmt: skip
    replay_s = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"replay failed: {done.stderr[-500:]}")
    return [
        f"capture writer: {w['events']:,.0f} synthetic L2 updates of 32 symbols (20 levels a"
        " side, 3 changed per update, 0-3 trades each) in batches of 64",
        f"  trading path (enqueue a batch): p50 {w['enqueue_us_p50']:.1f} us, p99"
        f" {w['enqueue_us_p99']:.1f} us; writer drained in {w['drain_s']:.2f} s"
        f" ({w['events'] / w['drain_s']:,.0f} events/s), process cpu {w['cpu_s']:.2f} s,"
        f" {w['bytes_per_event']:.0f} bytes/event on disk, {w['dropped']:.0f} dropped",
        f"replay speed: that capture through `perps-bot replay` (32-symbol strategy): "
        f"{w['events'] / replay_s:,.0f} events/s ({replay_s:.1f} s wall, start-up included)",
    ]


def dry_run_lines(work: Path, seconds: int, repeat: int, env: dict[str, str]) -> list[str]:
    port = free_port()
    emulator = subprocess.Popen([sys.executable, __file__, "emulator", str(port)], cwd=REPO,
                                stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
    runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    try:
        assert emulator.stdout is not None
        emulator.stdout.readline()  # "ready"
        url = f"http://127.0.0.1:{port}"
        for _ in range(repeat):
            for capture in (False, True):
                done = child([sys.executable, __file__, "bot", url, str(seconds),
                              str(int(capture)), str(work)], env)  # fmt: skip
                if done.returncode != 0:
                    raise SystemExit(f"capture bench bot failed: {done.stderr[-500:]}")
                runs[capture].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"  dry run, capture {'on' if capture else 'off'}: "
                      f"{runs[capture][-1]['cpu']:.2f} s cpu", flush=True)  # fmt: skip
    finally:
        emulator.terminate()
        emulator.wait()
    lines = [
        f"dry run: {len(SYMBOLS)} symbols against the emulator, {seconds} s each, median of"
        f" {repeat} (REST poll {POLL}; emulator: a step every {STEP_S * 1000:.0f} ms, other"
        " participants on; cpu includes start-up)"
    ]
    for capture in (False, True):
        rs = runs[capture]
        lat = [x for r in rs for x in r["latencies"]]
        cpu = statistics.median(r["cpu"] for r in rs)
        events = statistics.median(r["events"] or 0 for r in rs)
        orders = statistics.median(r["orders"] for r in rs)
        lines.append(
            f"  capture {'on ' if capture else 'off'}: cpu {cpu:6.2f} s, orders {orders:5.0f},"
            f" tick-to-order p50 {percentile(lat, 0.5):5.1f} ms p99 {percentile(lat, 0.99):5.1f} ms"
            + (f", {events:,.0f} events captured" if capture else "")
        )
    return lines


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "emulator":
        asyncio.run(serve_emulator(int(sys.argv[2])))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "bot":
        sys.path.insert(0, str(REPO))
        url, seconds, capture, work = sys.argv[2:6]
        out = run_bot_child(url, int(seconds), capture == "1", Path(work))
        print(json.dumps(out))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--events", type=int, default=200_000)
    opts = parser.parse_args()
    for line in run_capture_bench(opts.seconds, opts.repeat, opts.events):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
