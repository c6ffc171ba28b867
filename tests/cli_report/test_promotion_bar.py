"""`perps-bot promote` checks the run against the criteria of the stage it goes to
(SPEC 6): each threshold is the stricter of the run's own config and the target stage's
profile, so a run started with relaxed `promotion:` cannot promote itself."""

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from perps_bot.cli.report import register
from perps_bot.storage import RunStore
from perps_bot.storage.drift_store import save_drift
from tests.metrics.metrics_builders import (
    EASY_CANARY,
    EASY_PROMOTION,
    passing_run,
    stage_profiles,
)

#: what a dev run started with PERPS_BOT__PROMOTION__MIN_WIN_RATE=0 ... stores
RELAXED = EASY_PROMOTION | {
    "min_trades": 1,
    "min_days": 1.0,
    "min_win_rate": 0.0,
    "min_sharpe": -1000.0,
    "max_drawdown": 1.0,
    "max_slippage_drift_bps": 50.0,
}


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_a_relaxed_dev_run_is_held_to_the_canary_profiles_criteria(
    app: typer.Typer, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    stage_profiles(tmp_path, canary=EASY_CANARY | {"min_win_rate": 0.9})
    db, target = tmp_path / "dev.sqlite", tmp_path / "canary.sqlite"
    with RunStore(db) as store:
        passing_run(store, "relaxed", promotion=RELAXED)  # win rate 2/3
    args = ["promote", "--to", "canary", "--db", str(db), "--target-db", str(target)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.stdout
    assert result.stderr.count("\n") == 1
    assert "1 of 7 criteria failed" in result.stderr
    assert "win_rate = 0.666667 (needs > 0.9" in result.stderr
    assert "canary profile" in result.stderr and "run's own config: > 0" in result.stderr
    assert "canary profile" in result.stdout  # the table says where the threshold is from
    assert not target.exists()
    # the run's own report keeps its own profile's criteria
    report = runner.invoke(app, ["report", "--db", str(db)])
    assert "PASSED: 7/7" in report.stdout and "canary profile" not in report.stdout


def test_the_runs_own_stricter_threshold_stays(
    app: typer.Typer, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    stage_profiles(tmp_path, canary=EASY_CANARY | {"min_win_rate": 0.0})
    db, target = tmp_path / "dev.sqlite", tmp_path / "canary.sqlite"
    with RunStore(db) as store:
        passing_run(store, "strict", promotion=EASY_PROMOTION | {"min_win_rate": 0.8})
    args = ["promote", "--to", "canary", "--db", str(db), "--target-db", str(target)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "win_rate = 0.666667 (needs > 0.8)" in result.stderr
    assert "profile" not in result.stderr


def test_a_canary_run_with_relaxed_drift_bounds_is_held_to_the_prod_profiles(
    app: typer.Typer, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    stage_profiles(tmp_path, prod=EASY_PROMOTION)
    db, target = tmp_path / "canary.sqlite", tmp_path / "prod.sqlite"
    drift = {"median_slippage_drift_bps": 5.0, "signal_agreement": 1.0, "pnl_tracking_error": 0.0}
    with RunStore(db) as store:
        passing_run(store, "live-canary", kind="live", profile="canary", promotion=RELAXED)
        save_drift(store, "live-canary", "a-replay", {}, drift)
    args = ["promote", "--to", "prod", "--db", str(db), "--target-db", str(target)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.stdout
    assert "1 of 10 criteria failed" in result.stderr
    assert "slippage_drift_bps = 5 (needs <= 2" in result.stderr
    assert "prod profile" in result.stderr
    assert not target.exists()
