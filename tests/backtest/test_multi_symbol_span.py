"""A multi-symbol backtest whose files barely overlap: the run says in one line when
the symbols trade together, and refuses files that share no time at all (the report
claimed the whole union, e.g. 11 days from 3 + 1 days of data with a week's hole,
and the promotion gate's `days` criterion passed on it)."""

from pathlib import Path

import pytest

from tests.badinput.harness import assert_bad_input, run_main
from tests.badinput.inputs import MINUTE, candle_rows, write_rows

T0 = 1_704_067_200_000  # 2024-01-01
DAY = 86_400_000
BACKTEST = ["backtest", "--strategy", "sma_cross", "--no-progress"]


@pytest.fixture(autouse=True)
def _scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERPS_BOT__RUN__LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp_path / "data"))


def _args(tmp: Path, eth_start: int, eth_minutes: int = 1440) -> list[str]:
    btc = write_rows(tmp / "btc.csv", candle_rows(3 * 1440, T0, MINUTE, 100.0))
    eth = write_rows(tmp / "eth.csv", candle_rows(eth_minutes, eth_start, MINUTE, 50.0))
    return [*BACKTEST, "--data", str(btc), "--symbol", "BTC-PERP",
            "--data", str(eth), "--symbol", "ETH-PERP"]  # fmt: skip


def test_files_sharing_no_time_are_refused(tmp_path: Path) -> None:
    line = assert_bad_input(run_main(_args(tmp_path, T0 + 10 * DAY)))
    assert "do not overlap" in line and "BTC-PERP" in line and "ETH-PERP" in line, line


def test_a_partial_overlap_is_said_in_one_line(tmp_path: Path) -> None:
    outcome = run_main(_args(tmp_path, T0 + 3 * DAY - 60 * MINUTE))
    assert outcome.code == 0, outcome.err
    said = [line for line in outcome.out.splitlines() if "overlap only" in line]
    assert len(said) == 1, outcome.out
    assert "2024-01-03T23:00:00.000Z -> 2024-01-04T00:00:00.000Z" in said[0], said[0]


def test_files_covering_the_same_time_say_nothing_more(tmp_path: Path) -> None:
    outcome = run_main(_args(tmp_path, T0, 3 * 1440))
    assert outcome.code == 0, outcome.err
    assert "overlap only" not in outcome.out, outcome.out
