"""Benchmark: a report over a million equity rows runs in seconds, in bounded memory.

    .venv/bin/python scripts/bench_report.py [--rows 1000000] [--keep DB]

Fills a temp store with `--rows` one-minute equity rows (about 1.9 years) and a
few thousand fills, then times the report (metrics + JSON + HTML + CSV export)
in a fresh child process so its peak RSS is the report's own, not the data
generator's. Prints seconds per stage and peak RSS. Not a test: timings depend on
the machine.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from perps_bot.domain import Fill, Liquidity, Side
from perps_bot.storage import RunRecord, RunStore

T0 = 1_704_067_200_000
MINUTE = 60_000


def fill_store(path: Path, rows: int, seed: int = 1) -> str:
    rng = np.random.default_rng(seed)
    store = RunStore(path)
    run_id = "bench"
    store.create_run(
        RunRecord(
            run_id=run_id,
            profile="dev",
            kind="dev",
            seed=seed,
            config_hash="bench",
            config_json=json.dumps({"promotion": {"sharpe_period": "1d"}}),
            strategy="sma_cross",
            strategy_params="{}",
            strategy_fingerprint="bench",
            code_version="0.1.0",
            symbols='["BTC-PERP"]',
            initial_balance=100_000.0,
            created_at=0,
            start_ts=T0,
            end_ts=T0 + (rows - 1) * MINUTE,
            status="completed",
            error_lines=0,
            warning_lines=0,
            detail=None,
        )
    )
    equity = 100_000.0
    step = 200_000
    for start in range(0, rows, step):
        n = min(step, rows - start)
        curve = equity * np.cumprod(1 + rng.normal(2e-6, 4e-4, n))
        equity = float(curve[-1])
        for i in range(n):
            value = float(curve[i])
            store.add_equity(run_id, T0 + (start + i) * MINUTE, value, value, 0.0)
    price = 60_000.0
    for k in range(0, rows - 60, 300):  # a round trip every 5 hours
        ts = T0 + k * MINUTE
        exit_price = price * (1 + rng.normal(0, 0.004))
        for j, (side, px, after) in enumerate(
            ((Side.BUY, price, 0.1), (Side.SELL, exit_price, 0.0))
        ):
            fill = Fill(ts + j * 60 * MINUTE, "BTC-PERP", side, 0.1, px, 0.3, Liquidity.TAKER,
                        f"c{k}-{j}", f"k{k}", "signal")  # fmt: skip
            realized = 0.1 * (exit_price - price) if j else 0.0
            store.add_fill(run_id, fill, realized_pnl=realized, position_after=after,
                           entry_after=price if after else 0.0)  # fmt: skip
        price = exit_price
    store.close()
    return run_id


def run_report(db: Path, run_id: str, out_dir: Path) -> None:
    from perps_bot.metrics import build_report, export_csv, render_html

    timings: dict[str, float] = {}
    store = RunStore(db, read_only=True)
    t = time.perf_counter()
    report = build_report(store, run_id)
    timings["metrics"] = time.perf_counter() - t
    t = time.perf_counter()
    (out_dir / "report.json").write_text(report.to_json())
    (out_dir / "report.html").write_text(render_html(report))
    timings["json+html"] = time.perf_counter() - t
    t = time.perf_counter()
    export_csv(store, run_id, report.trades, out_dir)
    timings["csv export"] = time.perf_counter() - t
    store.close()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(
        f"equity rows {report.equity.rows:,}, trades {report.metrics['trades']:,}; "
        + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items())
        + f"; total {sum(timings.values()):.2f}s; peak RSS {peak_mib:.0f} MiB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="time a report over many equity rows")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="store the database here (default: temp)")
    parser.add_argument("--report-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.report_only is not None:
        with tempfile.TemporaryDirectory() as tmp:
            run_report(args.report_only, "bench", Path(tmp))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        db = args.keep or Path(tmp) / "bench.sqlite"
        t = time.perf_counter()
        fill_store(db, args.rows)
        print(f"generated {args.rows:,} equity rows in {time.perf_counter() - t:.1f}s")
        subprocess.run([sys.executable, __file__, "--report-only", str(db)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
