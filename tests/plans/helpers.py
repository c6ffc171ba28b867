"""Candle files, plan files and CLI runs for the plan tests."""

import csv
from dataclasses import dataclass
from pathlib import Path

import pytest

from perps_bot.cli.app import main

HOUR = 3_600_000
T0 = "2024-03-01T00:00:00Z"


def hour(n: int) -> str:
    """The ISO time of the n-th hourly bar's open (0-based)."""
    return f"2024-03-01T{n:02d}:00:00Z"


def write_candles(path: Path, bars: list[tuple[float, float, float, float]]) -> Path:
    """Hourly BTC candles from (open, high, low, close) rows, starting at T0."""
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["timestamp", "open", "high", "low", "close", "volume"])
        for n, (o, h, lo, c) in enumerate(bars):
            out.writerow([hour(n), o, h, lo, c, 10])
    return path


def write_plan(path: Path, rows: list[dict[str, object]]) -> Path:
    columns = ["id", "symbol", "side", "size", "notional", "entry", "limit_price", "stop",
               "take_profit", "valid_from", "valid_until", "tag"]  # fmt: skip
    with path.open("w", newline="") as fh:
        out = csv.DictWriter(fh, fieldnames=columns)
        out.writeheader()
        for row in rows:
            out.writerow({"symbol": "BTC-PERP", **row})
    return path


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> Result:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return Result(int(code) if isinstance(code, int) else 1, out, err)


def backtest(
    tmp_path: Path, candles: Path, plan: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> Result:
    db = tmp_path / "bt.sqlite"
    return run_main(
        ["backtest", "--data", str(candles), "--symbol", "BTC-PERP", "--strategy", "plan",
         "--param", f"file={plan}", "--order-size", "1", "--seed", "1", "--db", str(db),
         "--no-progress", *extra],
        capsys,
    )  # fmt: skip


def exported(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> list[dict[str, str]]:
    out = tmp_path / "export"
    result = run_main(
        ["report", "--db", str(tmp_path / "bt.sqlite"), "--export", str(out), "--out", "/dev/null"],
        capsys,
    )
    assert result.code == 0, result.err
    with (out / name).open() as fh:
        return list(csv.DictReader(fh))
