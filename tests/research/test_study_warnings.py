"""SPEC 15 in the research commands: a metric from too little data is marked, never
shown silently. `optimize`'s top-trials table showed each trial's Sharpe ratio (from a
handful of daily returns) and win rate (from a handful of trades) bare, and the
deflated Sharpe ratio of the best trial and of a walk-forward's out-of-sample run was
not flagged when its Sharpe ratio came from fewer than 30 returns."""

import json
from pathlib import Path

import pytest

from tests.research.helpers import run_cli, write_candles
from tests.research.test_optimize_cli import optimize_args
from tests.research.test_walkforward import LOOSE_PROFILE, wf_args


def test_optimize_marks_metrics_from_too_little_data(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    ten_days = write_candles(workdir / "ten.feather", 10 * 1440)
    args = optimize_args(ten_days, "--trials", "3", "--study", "w", "--no-store",
                         "--json", str(workdir / "o.json"))  # fmt: skip
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert "(!) sharpe from 9 returns of 1d (fewer than 30): trials" in out, out
    assert "(!) win_rate" not in out, out  # hundreds of trades: the win rate is not flagged
    table = out[out.index("top trials") : out.index("(!) sharpe")]
    assert table.count("(!)") == 3, table
    (dsr,) = [line for line in out.splitlines() if line.startswith("deflated Sharpe")]
    assert "(!) from 9 returns of 1d (fewer than 30)" in dsr, dsr
    results = json.loads((workdir / "o.json").read_text())
    assert results["dsr_warning"] == "from 9 returns of 1d (fewer than 30)"
    for row in results["top"]:
        assert row["returns"] == 9
        assert {"metric": "sharpe", "reason": "from 9 returns of 1d (fewer than 30)"} in row[
            "warnings"
        ]


def test_a_walkforward_dsr_from_a_short_out_of_sample_run_is_flagged(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    (workdir / "loose.yaml").write_text(LOOSE_PROFILE)
    # 8 days of test windows, the last closed at the candle after them: 8 daily returns
    twelve_days = write_candles(workdir / "twelve.feather", 12 * 1440 + 1)
    code, out, err = run_cli(wf_args(twelve_days, workdir / "wf.json"), capsys)
    assert code == 0, err
    code, out, err = run_cli(["report", "--profile", "loose.yaml"], capsys)
    assert code == 0, err
    (dsr,) = [line for line in out.splitlines() if line.startswith("deflated Sharpe")]
    assert "(!) from 8 returns of 1d (fewer than 30)" in dsr, dsr
    code, out, err = run_cli(["report", "--profile", "loose.yaml", "--format", "json"], capsys)
    assert code == 0, err
    section = json.loads(out)["walkforward"]
    assert section["dsr"] is not None
    assert section["dsr_warning"] == "from 8 returns of 1d (fewer than 30)"
