"""`perps-bot backtest` end to end: the real XRP 5m candles and 8h funding file go
through the same runner as dev, and the stored funding matches a direct computation."""

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from perps_bot.cli.app import main
from perps_bot.feeds.loaders import load_candles, load_funding
from tests.conftest import SHARED_DATA

FUTURES = SHARED_DATA / "futures"
CANDLES = FUTURES / "XRP_USDT_USDT-5m-futures.feather"
FUNDING = FUTURES / "XRP_USDT_USDT-8h-funding_rate.feather"
H8 = 8 * 3_600_000
DEFAULT_RATE = 0.0003  # distinct from every rate in the file, so the source of each row shows


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return int(code) if isinstance(code, int) else 1, out, err


@pytest.fixture
def workdir(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PERPS_BOT__ACCOUNT__DEFAULT_FUNDING_RATE", str(DEFAULT_RATE))
    return workdir


@pytest.mark.integration
def test_backtest_xrp_funding_matches_direct_computation(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = workdir / "bt.sqlite"
    code, out, err = run_cli(
        [
            "backtest",
            "--data",
            str(CANDLES),
            "--funding",
            str(FUNDING),
            "--symbol",
            "XRP-PERP",
            "--strategy",
            "sma_cross",
            "--param",
            "fast=10",
            "--param",
            "slow=30",
            "--order-size",
            "100",
            "--seed",
            "7",
            "--db",
            str(db),
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0, err
    assert "1999 5m candles" in out
    assert "20 funding settlements (12 from file, 8 at default rate 0.0003)" in out

    with sqlite3.connect(db) as con:
        (run_id, kind, status, symbols) = con.execute(
            "SELECT run_id, kind, status, symbols FROM runs"
        ).fetchone()
        fills = con.execute(
            "SELECT ts, position_after FROM fills WHERE run_id=? ORDER BY seq", (run_id,)
        ).fetchall()
        stored = con.execute(
            "SELECT ts, rate, mark, position, payment FROM funding WHERE run_id=? ORDER BY ts",
            (run_id,),
        ).fetchall()
    assert (kind, status, symbols) == ("backtest", "completed", '["XRP-PERP"]')

    candles = load_candles(CANDLES)
    close_at = dict(zip(candles.close_time.tolist(), candles.close.tolist(), strict=True))
    assert len(fills) > 10
    assert all(ts in close_at for ts, _ in fills)  # fills happen at candle event times

    funding = load_funding(FUNDING, interval_ms=H8)
    file_rate = dict(zip(funding.ts.tolist(), funding.rate.tolist(), strict=True))
    fill_ts = np.array([ts for ts, _ in fills])
    fill_pos = [pos for _, pos in fills]
    expected = []
    first, last = int(candles.close_time[0]), int(candles.close_time[-1])
    for t in range(-(-first // H8) * H8, last + 1, H8):
        n = int(np.searchsorted(fill_ts, t, side="right"))  # fills at or before t
        position = fill_pos[n - 1] if n else 0.0
        if position == 0.0:
            continue
        rate = file_rate.get(t, DEFAULT_RATE)
        mark = close_at[t]
        expected.append((t, rate, mark, position, -position * mark * rate))

    held = [row for row in expected if row[3] != 0.0]
    assert len(held) >= 15, "the run must hold positions across most funding times"
    assert {row[1] for row in held} > {DEFAULT_RATE, 0.0001}  # both sources occur
    assert len(stored) == len(expected)
    for got, want in zip(stored, expected, strict=True):
        assert got[:4] == pytest.approx(want[:4], rel=0, abs=1e-12)
        assert got[4] == pytest.approx(want[4], rel=1e-12, abs=1e-15)


def _write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--data", "{tmp}/absent.csv"], "no such data file"),
        (["--data", "{tmp}/candles.txt"], "unknown data format"),
        (["--data", "{tmp}/gappy.csv"], "gappy.csv: row 3 (2021-11-15T00:15:00.000Z): gap"),
        (["--data", "{tmp}/good.csv", "--param", "fast"], "bad --param 'fast'"),
        (["--data", "{tmp}/good.csv", "--funding", "{tmp}/absent.json.gz"], "no such data"),
        (["--data", "{tmp}/good.csv", "--profile", "nope"], "profile 'nope' not found"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    workdir: Path, capsys: pytest.CaptureFixture[str], extra: list[str], fragment: str
) -> None:
    t0 = 1_636_934_400_000
    row = "{},1.0,1.1,0.9,1.05,10"
    (workdir / "candles.txt").write_text("x")
    _write_csv(workdir / "gappy.csv", [row.format(t0 + i * 300_000) for i in (0, 1, 3, 4)])
    _write_csv(workdir / "good.csv", [row.format(t0 + i * 300_000) for i in range(5)])
    args = ["backtest", "--symbol", "XRP-PERP", "--strategy", "sma_cross", "--no-progress"]
    args += [a.replace("{tmp}", str(workdir)) for a in extra]
    code, _, err = run_cli(args, capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert fragment in lines[0]


def test_fill_gaps_flag_repairs_and_says_so(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t0 = 1_636_934_400_000
    row = "{},1.0,1.1,0.9,1.05,10"
    path = _write_csv(workdir / "gappy.csv", [row.format(t0 + i * 300_000) for i in (0, 1, 3, 4)])
    code, out, err = run_cli(
        [
            "backtest",
            "--data",
            str(path),
            "--symbol",
            "XRP-PERP",
            "--strategy",
            "sma_cross",
            "--fill-gaps",
            "--db",
            str(workdir / "bt.sqlite"),
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0, err
    assert "5 5m candles" in out
    assert "fill-gaps inserted 1 flat candles, dropped 0 duplicate rows" in out


@pytest.mark.integration
def test_mark_file_and_json_candles_through_the_cli(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from perps_bot.feeds.loaders import load_marks

    data = FUTURES / "XRP_USDT_USDT-1h-futures.json.gz"
    mark = FUTURES / "XRP_USDT_USDT-1h-mark.feather"
    code, out, err = run_cli(
        [
            "backtest",
            "--data",
            str(data),
            "--mark",
            str(mark),
            "--symbol",
            "XRP-PERP",
            "--strategy",
            "sma_cross",
            "--param",
            "fast=3",
            "--param",
            "slow=8",
            "--db",
            str(workdir / "bt.sqlite"),
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0, err
    candle_close = load_candles(data).close_time
    mark_close = load_marks(mark).close_time
    covered = int(((candle_close >= mark_close[0]) & (candle_close <= mark_close[-1])).sum())
    assert 0 < covered < 100
    assert f"mark price from the mark file for {covered} of 100 candles" in out
    assert "12 funding settlements at default rate 0.0003" in out


@pytest.mark.integration
def test_same_seed_and_data_give_identical_stored_results(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = workdir / "twice.sqlite"
    args = [
        "backtest",
        "--data",
        str(FUTURES / "XRP_USDT_USDT-1h-futures.feather"),
        "--funding",
        str(FUNDING),
        "--symbol",
        "XRP-PERP",
        "--strategy",
        "sma_cross",
        "--param",
        "fast=3",
        "--param",
        "slow=8",
        "--seed",
        "11",
        "--order-size",
        "10",  # 1 XRP (the default size) is under the 5 USDT minimum order value
        "--db",
        str(db),
        "--no-progress",
    ]
    for _ in range(2):
        code, _, err = run_cli(args, capsys)
        assert code == 0, err
    with sqlite3.connect(db) as con:
        runs = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY rowid")]
        assert len(runs) == 2
        tables = {
            "fills": "ts, symbol, side, size, price, fee, position_after",
            "funding": "ts, rate, mark, position, payment",
            "equity_blocks": "block, rows, first_ts, last_ts, ts, equity, cash, unrealized_pnl",
            "plot_series": "symbol, position, name, ts, value",
        }
        for table, cols in tables.items():
            first, second = (
                con.execute(
                    f"SELECT {cols} FROM {table} WHERE run_id=? ORDER BY rowid", (run,)
                ).fetchall()
                for run in runs
            )
            assert first == second, table
            assert first, table
    # the same run renders to the same bytes, in every format
    for fmt in ("html", "json"):
        pages = []
        for run in runs:
            code, out, err = run_cli(
                ["report", "--db", str(db), "--run", run, "--format", fmt], capsys
            )
            assert code == 0, err
            pages.append(out)
        assert pages[0] == pages[1], fmt
        assert runs[0] not in pages[0] and str(db) not in pages[0]


def test_the_same_backtest_into_another_database_reports_the_same_bytes(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a run writes (database, data and log folders) is not what it trades: on main
    it was part of the stored config_hash, so the same profile, seed and data backtested
    into another database (or another checkout's folders) reported other JSON bytes."""
    pages = []
    for where in ("a", "b/c"):
        folder = workdir / where
        monkeypatch.setenv("PERPS_BOT__RUN__LOG_DIR", str(folder / "logs"))
        monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(folder / "data"))
        db = str(folder / "runs.sqlite")
        code, _, err = run_cli(
            ["backtest", "--data", str(FUTURES / "XRP_USDT_USDT-1h-futures.feather"),
             "--symbol", "XRP-PERP", "--strategy", "sma_cross", "--param", "fast=3",
             "--param", "slow=8", "--order-size", "10", "--db", db, "--no-progress"],
            capsys,
        )  # fmt: skip
        assert code == 0, err
        code, out, err = run_cli(["report", "--db", db, "--format", "json"], capsys)
        assert code == 0, err
        pages.append(out)
    assert json.loads(pages[0])["metrics"]["trades"] > 0
    assert pages[0] == pages[1]


def _sma(values: "np.ndarray", window: int) -> "np.ndarray":
    sums = np.cumsum(np.insert(values, 0, 0.0))
    out = np.full(values.shape[0], np.nan)
    out[window - 1 :] = (sums[window:] - sums[:-window]) / window
    return out


@pytest.mark.integration
def test_timeframe_aggregates_candles_into_the_strategys_bars(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """1m candles with --timeframe 5m: the strategy trades the crossovers of 5m bars
    (computed here directly from the resampled closes), and the orders fill on the
    next 1m candle, not the next 5m bar."""
    rng = np.random.default_rng(3)
    n, minute, start = 3_000, 60_000, 1_704_067_200_000
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
    opens = np.insert(closes[:-1], 0, 100.0)
    lines = [
        f"{start + i * minute},{o},{max(o, c) * 1.0005},{min(o, c) * 0.9995},{c},1.0"
        for i, (o, c) in enumerate(zip(opens, closes, strict=True))
    ]
    data = _write_csv(workdir / "m1.csv", lines)
    db = workdir / "tf.sqlite"
    profile = workdir / "syn.yaml"  # a synthetic market needs its instrument described
    profile.write_text("instruments:\n  SYN-PERP: {tick_size: 0.0001, step_size: 0.001}\n")
    args = ["backtest", "--data", str(data), "--symbol", "SYN-PERP", "--strategy", "sma_cross",
            "--param", "fast=3", "--param", "slow=8", "--timeframe", "5m", "--db", str(db),
            "--profile", str(profile), "--no-progress"]  # fmt: skip
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert "on 5m bars built from the candles" in out

    bar_close = closes[4::5]  # 600 complete 5m bars; bar k closes at start + 5 min * (k+1)
    diff = _sma(bar_close, 3) - _sma(bar_close, 8)
    sign = np.sign(diff)
    expected = []
    regime = 0
    for k in range(bar_close.shape[0]):
        if np.isnan(diff[k]) or sign[k] == 0 or sign[k] == regime:
            continue
        if regime != 0:
            fill_ts = start + (5 * (k + 1) + 1) * minute  # the next 1m candle's close
            expected.append((fill_ts, "buy" if sign[k] > 0 else "sell"))
        regime = int(sign[k])
    with sqlite3.connect(db) as con:
        fills = con.execute("SELECT ts, side FROM fills ORDER BY seq").fetchall()
    assert len(expected) > 10
    assert fills == expected[: len(fills)] and len(expected) - len(fills) <= 1


def test_timeframe_that_does_not_fit_the_candles_is_one_line_exit_2(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _write_csv(workdir / "m5.csv", [f"{i * 300_000},1,1,1,1,1" for i in range(50)])
    code, _, err = run_cli(
        ["backtest", "--data", str(data), "--symbol", "X", "--strategy", "sma_cross",
         "--timeframe", "7m", "--no-progress"],
        capsys,
    )  # fmt: skip
    assert code == 2
    assert err.strip() == (
        "perps-bot: strategy.timeframe 7m is not a multiple of the data's 5m candles"
    )


README_EXAMPLE = [
    "backtest", "--data", str(CANDLES), "--funding", str(FUNDING), "--symbol", "XRP-PERP",
    "--strategy", "sma_cross", "--param", "fast=10", "--param", "slow=30",
    "--order-size", "100", "--no-progress",
]  # fmt: skip


@pytest.mark.integration
def test_readme_example_logs_trades_samples_prices_and_fails_as_documented(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import csv
    import json
    import re

    db = workdir / "bt.sqlite"
    code, _out, err = run_cli([*README_EXAMPLE, "--db", str(db)], capsys)
    assert code == 0, err
    logs = workdir / "logs"
    assert (logs / "perps_bot.backtest.log").exists() and (logs / "events.backtest.jsonl").exists()
    assert not (logs / "perps_bot.log").exists() and not (logs / "events.jsonl").exists()
    lines = (logs / "perps_bot.backtest.log").read_text().splitlines()
    with sqlite3.connect(db) as con:
        (run_id,) = con.execute("SELECT run_id FROM runs").fetchone()
    assert lines and all(f" [{run_id}] " in line for line in lines)
    closed = [line for line in lines if " TRADE CLOSED " in line]

    code, out, err = run_cli(
        ["report", "--db", str(db), "--format", "json", "--export", str(workdir / "x")], capsys
    )
    assert code == 0, err
    report = json.loads(out)
    with (workdir / "x" / "trades.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(closed) == len(rows) == report["metrics"]["trades"] == 85
    with sqlite3.connect(db) as con:
        paid = dict(con.execute("SELECT ts, payment FROM funding WHERE run_id=?", (run_id,)))
    shifted = 0
    for line, row in zip(closed, rows, strict=True):
        net = float(re.search(r"net PnL=(-?\d+\.\d+)", line).group(1))  # type: ignore[union-attr]
        # The log and trades.csv book funding to the position that paid it. A backtest
        # settles funding after the fills of the candle at the same time, so a payment
        # at the opening fill's time is this trade's, and one at the closing fill's time
        # the next trade's (trades.csv gave them the other way round).
        opened, closed_at = (_ms(row[k]) for k in ("open_time", "close_time"))
        shifted += opened in paid or closed_at in paid
        assert net == pytest.approx(float(row["net_pnl"]), abs=5e-5)
        assert f"{row['symbol']} {row['side']} " in line
        assert f"reason={row['exit_reason']}" in line
    # README: this example is not promotable, and says why
    failed = {c["name"] for c in report["validation"]["criteria"] if not c["passed"]}
    assert failed == {"trades", "days", "win_rate", "sharpe"}
    assert {w["metric"] for w in report["warnings"]} >= {"sharpe", "sortino", "psr", "cagr"}
    with sqlite3.connect(db) as con:
        names = [r[0] for r in con.execute("SELECT name FROM plot_series ORDER BY position")]
    assert names == ["price", "SMA 10", "SMA 30"]
    assert shifted > 0  # the test above did meet the boundary case


def _ms(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def test_a_backtest_covers_its_candles_from_the_first_open(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """576 candles of 5 minutes are two days of market: the run starts at the first
    candle's open, not its close, so a 7-day data set can pass `min_days: 7`."""
    start = _ms("2021-11-15T00:00:00Z")
    lines = []
    for i in range(576):
        price = 100.0 + (i % 7)
        lines.append(f"{start + i * 300_000},{price},{price + 1},{price - 1},{price},1")
    data = _write_csv(workdir / "two_days.csv", lines)
    db = workdir / "bt.sqlite"
    code, _, err = run_cli(
        ["backtest", "--data", str(data), "--symbol", "BTC-PERP", "--strategy", "sma_cross",
         "--db", str(db), "--no-progress"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    code, out, err = run_cli(["report", "--db", str(db), "--format", "json"], capsys)
    assert code == 0, err
    run = json.loads(out)["run"]
    assert run["days"] == pytest.approx(2.0)
    assert run["start"] == "2021-11-15T00:00:00.000Z"


def test_orders_refused_for_their_size_are_said_not_silent(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """XRP-PERP has no order size in the dev profile: the default of 1 XRP (about 1.2
    USDT) is under the 5 USDT minimum, so every order was refused before it existed.
    The run ended with 'trades 0' and nothing else, and the refusals were logged only
    at DEBUG: a trader saw a strategy that never trades."""
    code, out, err = run_cli(
        ["backtest", "--data", str(CANDLES), "--symbol", "XRP-PERP", "--strategy",
         "sma_cross", "--db", str(workdir / "bt.sqlite"), "--no-progress"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    denied = [line for line in out.splitlines() if line.startswith("denied")]
    assert denied and "BELOW_MIN_NOTIONAL" in denied[0], out
    log = (workdir / "logs" / "perps_bot.backtest.log").read_text()
    warned = [line for line in log.splitlines() if "WARNING" in line and "XRP-PERP" in line]
    assert len(warned) == 1, warned  # once per symbol and reason, not per order
    assert "strategy.order_size" in warned[0] and "minimum" in warned[0]


def test_mark_files_given_in_another_order_than_the_symbols_are_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two symbols, their mark files swapped: each symbol's candles would be valued,
    liquidated and stopped at the other market's marks. One line, exit 2, naming the
    symbol; in the right order the run goes ahead (a basis of 0.1% is a mark)."""
    start, minute = 1_704_067_200_000, 60_000

    def series(name: str, price: float) -> Path:
        rows = [f"{start + i * minute},{price},{price * 1.001},{price * 0.999},{price},1"
                for i in range(100)]  # fmt: skip
        return _write_csv(workdir / name, rows)

    a, b = series("a.csv", 100.0), series("b.csv", 2_000.0)
    a_mark, b_mark = series("am.csv", 100.1), series("bm.csv", 1_998.0)
    args = ["backtest", "--data", str(a), "--data", str(b), "--symbol", "BTC-PERP",
            "--symbol", "ETH-PERP", "--strategy", "sma_cross", "--db",
            str(workdir / "bt.sqlite"), "--no-progress"]  # fmt: skip
    code, _, err = run_cli([*args, "--mark", str(b_mark), "--mark", str(a_mark)], capsys)
    assert code == 2
    assert err.startswith("perps-bot: BTC-PERP: the mark file does not price these candles:")
    assert len(err.strip().splitlines()) == 1
    code, out, err = run_cli([*args, "--mark", str(a_mark), "--mark", str(b_mark)], capsys)
    assert code == 0, err
    assert "mark price from the mark file for 100 of 100 candles" in out


def test_a_symbol_without_an_instrument_is_refused_before_the_run_is_described(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--symbol btc-perp` printed the run's description (candles, funding, strategy) as
    if it would run, then refused the symbol: the refusal now comes alone."""
    t0 = 1_636_934_400_000
    data = _write_csv(workdir / "good.csv", [f"{t0 + i * 300_000},1.0,1.1,0.9,1.05,10"
                                             for i in range(5)])  # fmt: skip
    args = ["backtest", "--symbol", "btc-perp", "--strategy", "sma_cross", "--no-progress",
            "--data", str(data)]  # fmt: skip
    code, out, err = run_cli(args, capsys)
    assert code == 2 and out == "", out
    assert [line for line in err.splitlines() if line.strip()] == [err.strip()]
    assert "unknown symbol 'btc-perp'" in err
