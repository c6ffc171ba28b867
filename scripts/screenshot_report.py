"""Render a run's HTML report, open it in headless Chromium and screenshot it.

    .venv/bin/python scripts/screenshot_report.py --out report.png
    .venv/bin/python scripts/screenshot_report.py --db data/perps_bot.dev.sqlite --run latest
    .venv/bin/python scripts/screenshot_report.py --trades 10000 --out big.png

Without --db it builds a seeded demo run in a temp store (a week of minute equity,
~100 trades on two symbols, funding, excursions, denials, a sampled price with two
SMAs; or, with --trades N, N trades on three symbols over N * 40 minutes with full
4096-sample price series), so the page can be checked by eye without running the
bot. It prints the HTML size, the console errors and the requests the page made
(the browser has no network). Chromium: `apt-get install -y chromium`.
"""

import argparse
import asyncio
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

from perps_bot.domain import Fill, Liquidity, Side
from perps_bot.metrics import build_report, render_html
from perps_bot.storage import PRICE, RunRecord, RunStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from headless import CHROMIUM, Chromium, available

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
MINUTE = 60_000
SAMPLES = 4096  # the most a run's sampler keeps per symbol


def _create_run(store: RunStore, run_id: str, seed: int, end_ts: int, symbols: list[str]) -> None:
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
            symbols=json.dumps(symbols),
            initial_balance=100_000.0,
            created_at=0,
            start_ts=T0,
            end_ts=end_ts,
            status="completed",
            error_lines=0,
            warning_lines=0,
            detail=None,
        )
    )


def _sma(values: np.ndarray, n: int) -> np.ndarray:
    out = np.full(values.size, np.nan)
    if values.size >= n:
        out[n - 1 :] = np.convolve(values, np.ones(n) / n, mode="valid")
    return out


def _put_prices(
    store: RunStore, run_id: str, symbol: str, ts: np.ndarray, path: np.ndarray
) -> None:
    """The price at most SAMPLES times, evenly spread, with SMA 10 and 30 of those samples
    (what a run's sampler stores)."""
    step = max(1, math.ceil(path.size / SAMPLES))
    ts, path = ts[::step], path[::step]
    series = {PRICE: path, "SMA 10": _sma(path, 10), "SMA 30": _sma(path, 30)}
    store.put_plot_series(run_id, symbol, ts.astype(np.int64), series)


def build_demo_run(path: Path, *, days: int = 7, seed: int = 7) -> str:
    """A seeded synthetic run: trades every ~90 minutes alternating symbols."""
    rng = np.random.default_rng(seed)
    store = RunStore(path)
    run_id = "demo"
    _create_run(store, run_id, seed, T0 + days * 1440 * MINUTE, ["BTC-PERP", "ETH-PERP"])
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
    for symbol, path in prices.items():
        _put_prices(store, run_id, symbol, T0 + np.arange(path.size, dtype=np.int64) * MINUTE, path)
    store.close()
    return run_id


def build_large_run(path: Path, *, trades: int = 10_000, seed: int = 11) -> str:
    """`trades` round trips on three symbols, one opening every 40 minutes and lasting
    10 to 35 minutes; equity every 10 minutes, excursions, full-size price series."""
    rng = np.random.default_rng(seed)
    symbols = ["BTC-PERP", "ETH-PERP", "SOL-PERP"]
    minutes = trades * 40 + 60
    store = RunStore(path)
    run_id = "large"
    _create_run(store, run_id, seed, T0 + minutes * MINUTE, symbols)
    start = {"BTC-PERP": 60_000.0, "ETH-PERP": 3_000.0, "SOL-PERP": 100.0}
    paths = {s: p * np.exp(np.cumsum(rng.normal(0, 0.001, minutes))) for s, p in start.items()}
    realized = np.zeros(minutes)
    for i in range(trades):
        symbol = symbols[i % 3]
        opened, held = i * 40, int(rng.integers(10, 36))
        entry, exit_ = float(paths[symbol][opened]), float(paths[symbol][opened + held])
        qty = 1_000.0 / entry
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        sign = 1.0 if side is Side.BUY else -1.0
        pnl = sign * qty * (exit_ - entry)
        fee = 0.0005 * qty * (entry + exit_)
        close_side = Side.SELL if side is Side.BUY else Side.BUY
        for ts, fill_side, price, pos, real, reason in (
            (opened, side, entry, sign * qty, 0.0, "sma_cross up 10/30"),
            (opened + held, close_side, exit_, 0.0, pnl, "sma_cross down 10/30"),
        ):
            store.add_fill(
                run_id,
                Fill(T0 + ts * MINUTE, symbol, fill_side, qty, price, fee / 2, Liquidity.TAKER,
                     f"c{i}-{ts}", f"k{i}", reason),
                realized_pnl=real, position_after=pos, entry_after=entry if pos else 0.0,
            )  # fmt: skip
        store.add_excursion(
            run_id,
            symbol,
            T0 + opened * MINUTE,
            T0 + (opened + held) * MINUTE,
            min(pnl, 0),
            max(pnl, 0),
        )
        realized[opened + held :] += pnl - fee
    for minute in range(0, minutes, 10):
        cash = 100_000.0 + float(realized[minute])
        store.add_equity(run_id, T0 + minute * MINUTE, cash, cash, 0.0)
    grid = T0 + np.arange(minutes, dtype=np.int64) * MINUTE
    for symbol, path_ in paths.items():
        _put_prices(store, run_id, symbol, grid, path_)
    store.close()
    return run_id


def screenshot(html_path: Path, png_path: Path, width: int = 1400, height: int = 2000) -> None:
    """Open `html_path` in headless Chromium without network, wait for the charts, and
    save a screenshot of the whole page; print console errors and requests."""
    if not available():
        raise SystemExit(f"{CHROMIUM} not found: apt-get update && apt-get install -y chromium")

    async def run() -> None:
        async with Chromium(width=width, height=height) as page:
            await page.open(html_path)
            png_path.write_bytes(await page.screenshot())
            others = sorted(
                {u for u in page.requests if not u.startswith(("file:", "data:", "blob:"))}
            )
            print(f"console errors: {page.errors or 'none'}; network requests: {others or 'none'}")

    asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--db", type=Path, help="run database (default: a seeded demo run)")
    parser.add_argument("--run", default="latest", help="run id or 'latest'")
    parser.add_argument("--trades", type=int, help="demo run with this many trades instead")
    parser.add_argument("--out", type=Path, default=Path("report.png"), help="PNG to write")
    parser.add_argument("--html", type=Path, help="also keep the rendered HTML here")
    parser.add_argument("--height", type=int, default=2000, help="window height in pixels")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db
        run = args.run
        if db is None:
            db = Path(tmp) / "demo.sqlite"
            run = build_large_run(db, trades=args.trades) if args.trades else build_demo_run(db)
        store = RunStore(db, read_only=True)
        try:
            html = render_html(build_report(store, run))
        finally:
            store.close()
        html_path = args.html or Path(tmp) / "report.html"
        html_path.write_text(html, encoding="utf-8")
        print(f"HTML {len(html.encode()):,} bytes")
        screenshot(html_path, args.out, height=args.height)
    print(f"wrote {args.out} ({math.ceil(args.out.stat().st_size / 1024)} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
