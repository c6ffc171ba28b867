"""Render a run's HTML report and screenshot it with headless Chromium.

    .venv/bin/python scripts/screenshot_report.py --out report.png
    .venv/bin/python scripts/screenshot_report.py --db data/perps_bot.dev.sqlite --run latest

Without --db it builds a seeded demo run (a week of minute equity, ~100 trades on
two symbols, funding, excursions, denials) in a temp store, so the page can be
checked by eye without running the bot. Chromium: `apt-get install -y chromium`.
"""

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from perps_bot.domain import Fill, Liquidity, Side
from perps_bot.metrics import build_report, render_html
from perps_bot.storage import RunRecord, RunStore

CHROMIUM = "/usr/bin/chromium"
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
MINUTE = 60_000


def build_demo_run(path: Path, *, days: int = 7, seed: int = 7) -> str:
    """A seeded synthetic run: trades every ~90 minutes alternating symbols."""
    rng = np.random.default_rng(seed)
    store = RunStore(path)
    run_id = "demo"
    config = {"promotion": {"min_trades": 100, "min_days": 7, "sharpe_period": "1d"}}
    store.create_run(
        RunRecord(
            run_id=run_id,
            profile="dev",
            kind="dev",
            seed=seed,
            config_hash="demo",
            config_json=json.dumps(config),
            strategy="sma_cross",
            strategy_params=json.dumps({"fast": 10, "slow": 30}),
            strategy_fingerprint="demo-fingerprint",
            code_version="0.1.0",
            symbols=json.dumps(["BTC-PERP", "ETH-PERP"]),
            initial_balance=100_000.0,
            created_at=0,
            start_ts=T0,
            end_ts=T0 + days * 1440 * MINUTE,
            status="completed",
            error_lines=0,
            warning_lines=0,
            detail=None,
        )
    )
    minutes = days * 1440
    prices = {
        "BTC-PERP": 60_000 * np.exp(np.cumsum(rng.normal(0.0, 0.0008, minutes + 1))),
        "ETH-PERP": 3_000 * np.exp(np.cumsum(rng.normal(0.0, 0.001, minutes + 1))),
    }
    sizes = {"BTC-PERP": 0.5, "ETH-PERP": 8.0}
    cash = 100_000.0
    position: dict[str, tuple[float, float, int, float, float]] = {}  # qty, entry, open, lo, hi
    seq = 0
    next_trade = 30
    for minute in range(minutes + 1):
        ts = T0 + minute * MINUTE
        if minute == next_trade:
            symbol = "BTC-PERP" if (minute // 90) % 2 == 0 else "ETH-PERP"
            price = float(prices[symbol][minute])
            fee = abs(sizes[symbol] * price) * 0.0005
            seq += 1
            if symbol in position:
                qty, entry, open_ts, lo, hi = position.pop(symbol)
                realized = qty * (price - entry)
                side = Side.SELL if qty > 0 else Side.BUY
                cash += realized - fee
                store.add_fill(
                    run_id,
                    Fill(ts, symbol, side, abs(qty), price, fee, Liquidity.TAKER, f"c{seq}",
                         f"k{seq}", "exit_signal"),
                    realized_pnl=realized, position_after=0.0, entry_after=0.0,
                )  # fmt: skip
                store.add_excursion(run_id, symbol, open_ts, ts, min(lo, 0.0), max(hi, 0.0))
            else:
                direction = 1 if rng.random() < 0.55 else -1
                qty = direction * sizes[symbol]
                stop = price * (1 - 0.01 * direction)
                cash -= fee
                store.add_fill(
                    run_id,
                    Fill(ts, symbol, Side.BUY if direction > 0 else Side.SELL, abs(qty), price,
                         fee, Liquidity.TAKER, f"c{seq}", f"k{seq}", "sma_cross", False, stop),
                    realized_pnl=0.0, position_after=qty, entry_after=price,
                )  # fmt: skip
                position[symbol] = (qty, price, ts, 0.0, 0.0)
            next_trade += int(rng.integers(20, 120))
        upnl = 0.0
        for symbol, (qty, entry, open_ts, lo, hi) in list(position.items()):
            pnl = qty * (float(prices[symbol][minute]) - entry)
            position[symbol] = (qty, entry, open_ts, min(lo, pnl), max(hi, pnl))
            upnl += pnl
        if minute % 480 == 0 and minute:
            for symbol, (qty, *_rest) in position.items():
                payment = -qty * float(prices[symbol][minute]) * 0.0001
                cash += payment
                store.add_funding(run_id, ts, symbol, 0.0001, float(prices[symbol][minute]), qty,
                                  payment)  # fmt: skip
        store.add_equity(run_id, ts, cash + upnl, cash, upnl)
    for i in range(int(rng.integers(3, 9))):
        store.add_denial(run_id, T0 + i * 3_600_000, "BTC-PERP", "MAX_ORDER_NOTIONAL", "", "")
    store.add_denial(run_id, T0, "ETH-PERP", "STALE_MARKET_DATA", "", "")
    store.close()
    return run_id


def screenshot(html_path: Path, png_path: Path, width: int = 1400, height: int = 2000) -> None:
    """Screenshot `html_path` with headless Chromium (no network, throwaway profile)."""
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} not found: apt-get update && apt-get install -y chromium")
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--screenshot={png_path}",
                f"--window-size={width},{height}",
                html_path.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if not png_path.exists():
        raise SystemExit(f"chromium wrote no screenshot to {png_path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--db", type=Path, help="run database (default: a seeded demo run)")
    parser.add_argument("--run", default="latest", help="run id or 'latest'")
    parser.add_argument("--out", type=Path, default=Path("report.png"), help="PNG to write")
    parser.add_argument("--html", type=Path, help="also keep the rendered HTML here")
    parser.add_argument("--height", type=int, default=2000, help="window height in pixels")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db
        run = args.run
        if db is None:
            db = Path(tmp) / "demo.sqlite"
            run = build_demo_run(db)
        store = RunStore(db, read_only=True)
        try:
            html = render_html(build_report(store, run))
        finally:
            store.close()
        html_path = args.html or Path(tmp) / "report.html"
        html_path.write_text(html, encoding="utf-8")
        screenshot(html_path, args.out, height=args.height)
    print(f"wrote {args.out} ({math.ceil(args.out.stat().st_size / 1024)} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
