"""`data download` of a range the exchange has no rows of (no funding settlement
between two of them): it said "0 new rows -> PATH" of a file it never wrote, and
`backtest --funding PATH` then failed "no such data file". It says so plainly."""

import asyncio
from pathlib import Path

import pytest

from perps_bot.cli.app import main
from perps_emulator import EmulatorServer


async def test_a_range_without_funding_says_that_nothing_was_written(
    emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("PERPS_BOT__EXCHANGE__BASE_URL", emulator.base_url)
    monkeypatch.setenv("COLUMNS", "300")
    args = ["data", "download", "--symbols", "BTC-PERP", "--since", "2024-01-01T01:00",
            "--until", "2024-01-01T03:00", "--funding", "--out", str(tmp_path)]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        await asyncio.to_thread(main, args)
    out = capsys.readouterr().out
    assert done.value.code == 0, out
    funding = tmp_path / "BTC-PERP-8h-funding.feather"
    assert (tmp_path / "BTC-PERP-1m.feather").is_file()
    assert not funding.exists()
    lines = [line for line in out.splitlines() if line.startswith("BTC-PERP funding")]
    assert len(lines) == 1, out
    assert "nothing written" in lines[0] and str(funding) not in lines[0], lines
    assert "2024-01-01T01:00" in lines[0], lines


async def test_a_second_download_of_the_same_file_is_refused_while_one_runs(
    emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Two runs into one --out shared the file's staging names (`<file>.tmp`, its
    pages) with no lock: one renamed or removed what the other was writing."""
    from perps_bot.feeds.series_files import SeriesLock

    monkeypatch.setenv("PERPS_BOT__EXCHANGE__BASE_URL", emulator.base_url)
    monkeypatch.setenv("COLUMNS", "300")
    args = ["data", "download", "--symbols", "BTC-PERP", "--since", "2024-01-01",
            "--until", "2024-01-01T02:00", "--out", str(tmp_path)]  # fmt: skip
    candles = tmp_path / "BTC-PERP-1m.feather"
    with SeriesLock(candles):  # the other run, downloading this file
        with pytest.raises(SystemExit) as done:
            await asyncio.to_thread(main, args)
        out, err = capsys.readouterr()
        assert done.value.code == 2, out + err
        [line] = err.strip().splitlines()
        assert "being downloaded by another `data download`" in line, line
        assert not candles.exists() and not list(tmp_path.glob("*.parts"))
    with pytest.raises(SystemExit) as done:  # once it ended
        await asyncio.to_thread(main, args)
    assert done.value.code == 0 and candles.is_file()
