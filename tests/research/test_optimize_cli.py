"""`perps-bot optimize` end to end: the study lives in SQLite and a second invocation
continues it; the best trial's stored run reports the trial's metrics; bad input is
one line and exit code 2."""

import json
import sqlite3
from pathlib import Path

import optuna
import pytest

from tests.research.helpers import run_cli, write_candles


def optimize_args(data: Path, *more: str) -> list[str]:
    return [
        "optimize",
        "--data",
        str(data),
        "--symbol",
        "BTC-PERP",
        "--strategy",
        "sma_cross",
        "--space",
        "fast=int:2:20",
        "--space",
        "slow=int:25:90",
        "--objective",
        "total_pnl",
        "-j",
        "1",
        *more,
    ]


def test_a_second_invocation_continues_the_study(
    workdir: Path, two_days: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = optimize_args(two_days, "--trials", "3", "--study", "s1", "--no-store")
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    storage = f"sqlite:///{workdir / 'data' / 'studies.sqlite'}"
    first = optuna.load_study(study_name="s1", storage=storage)
    assert [t.number for t in first.trials] == [0, 1, 2]
    first_params = [t.params for t in first.trials]

    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    again = optuna.load_study(study_name="s1", storage=storage)
    assert [t.number for t in again.trials] == [0, 1, 2, 3, 4, 5]
    assert [t.params for t in again.trials[:3]] == first_params  # kept, not redone
    # new parameter sets, not the first invocation's drawn again from the same seed
    assert [t.params for t in again.trials[3:]] != first_params
    assert "6 complete" in out or "complete" in out


@pytest.mark.parametrize("seed", ["4294967295", str(2**63 - 1)])
def test_any_run_seed_seeds_the_sampler_and_a_continued_study(
    workdir: Path, two_days: Path, seed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--seed takes any run seed (0 to 2**63 - 1); Optuna's sampler only 0 to 2**32 - 1.
    On main 2**32 - 1 ran once, then the continued study (seeded past its trials) ended
    in an internal error, exit 1, as did every walk-forward window after the first; a
    larger seed was refused naming the study instead of running."""
    args = optimize_args(two_days, "--trials", "1", "--study", "big", "--no-store", "--seed", seed)
    for _ in range(2):
        code, _, err = run_cli(args, capsys)
        assert code == 0, err
    storage = f"sqlite:///{workdir / 'data' / 'studies.sqlite'}"
    assert len(optuna.load_study(study_name="big", storage=storage).trials) == 2


def test_the_best_trial_is_stored_and_reports_its_metrics(
    workdir: Path, two_days: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = workdir / "results.json"
    code, out, err = run_cli(
        optimize_args(two_days, "--trials", "4", "--study", "s2", "--json", str(out_json)),
        capsys,
    )
    assert code == 0, err
    results = json.loads(out_json.read_text())
    run_id = results["best_run"]
    best = results["best"][0]
    storage = f"sqlite:///{workdir / 'data' / 'studies.sqlite'}"
    trial = optuna.load_study(study_name="s2", storage=storage).trials[best["number"]]
    assert trial.value == max(
        t.value for t in optuna.load_study(study_name="s2", storage=storage).trials if t.value
    )

    code, out, err = run_cli(["report", "--run", run_id, "--format", "json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["run"]["kind"] == "backtest"
    assert report["run"]["strategy_params"]["fast"] == best["params"]["fast"]
    stored = report["metrics"]
    for name, value in trial.user_attrs["metrics"].items():
        assert stored[name] == value, name  # the trial is the stored run, number for number
    with sqlite3.connect(workdir / "data" / "perps_bot.dev.sqlite") as con:
        assert con.execute("SELECT COUNT(*) FROM runs").fetchone() == (1,)  # trials: no rows


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--objective", "luck"], "unknown objective 'luck'"),
        (["--objective", "max_drawdown"], "give max_drawdown second"),
        (["--objective", "max_drawdown,sharpe"], "give max_drawdown second"),
        (["--space", "x=int:5"], "bad --space 'x=int:5'"),
        (["--space", "x=normal:1:2"], "unknown kind 'normal'"),
        (["--space", "x=int:9:3"], "low 9 is above high 3"),
        (["--space", "fast=int:1:9"], "fast is given twice"),
        (["--space", "x=log:0:1"], "log needs LOW > 0"),
        # a file that cannot be created: was an internal error (exit 1)
        (["--storage", "/proc/perps-bot-studies.sqlite"], "bad --storage /proc/perps-bot"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    workdir: Path, two_days: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
    message: str,
) -> None:  # fmt: skip
    code, _, err = run_cli([*optimize_args(two_days, "--trials", "1"), *extra], capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_missing_data_is_one_line_and_exit_2(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(optimize_args(workdir / "nope.feather", "--trials", "1"), capsys)
    assert code == 2
    assert "no such data file" in err
    assert len(err.strip().splitlines()) == 1


def test_a_study_never_continues_on_other_candles(
    workdir: Path, two_days: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Trials run on other candles are not comparable: the best of them would be shown
    and stored as the best on these."""
    args = optimize_args(two_days, "--trials", "1", "--study", "s3", "--no-store")
    code, _, err = run_cli([*args, "--timerange", "20240101-20240102"], capsys)
    assert code == 0, err
    code, _, err = run_cli([*args, "--timerange", "20240102-20240103"], capsys)
    assert code == 2, err
    assert "use another --study name" in err and len(err.strip().splitlines()) == 1, err
    storage = f"sqlite:///{workdir / 'data' / 'studies.sqlite'}"
    assert len(optuna.load_study(study_name="s3", storage=storage).trials) == 1


def test_a_trial_that_never_traded_says_its_orders_were_denied(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """BTC-PERP at 1 USDT: the profile's 0.001 BTC is far under the minimum notional, so
    every order is refused. Each trial printed 'sharpe None total_pnl 0' and no reason."""
    cheap = write_candles(workdir / "cheap.feather", 1440, price=1.0)
    args = optimize_args(cheap, "--trials", "1", "--study", "cheap", "--no-store")
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    (trial,) = [line for line in out.splitlines() if line.startswith("[1/1] trial 0")]
    assert "trades 0" in trial and "denied BELOW_MIN_NOTIONAL" in trial, trial


def test_a_search_whose_every_objective_was_undefined_says_so(
    workdir: Path, two_days: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two days give no Sharpe ratio: every trial was recorded failed ("sharpe is
    undefined"), yet the command printed each as 'sharpe None ...', an empty table and
    'trials in the study: 2 fail', and exited 0 without saying why."""
    args = [*optimize_args(two_days, "--trials", "2", "--study", "nosharpe", "--no-store")]
    args[args.index("--objective") + 1] = "sharpe"
    code, out, err = run_cli(args, capsys)
    assert code == 2, out
    assert len(err.strip().splitlines()) == 1, err
    assert "every one of the 2 trials failed" in err and "sharpe is undefined" in err, err
    trial_lines = [line for line in out.splitlines() if line.startswith("[")]
    assert len(trial_lines) == 2 and all("failed: sharpe is undefined" in t for t in trial_lines)
    assert all("trades" in t for t in trial_lines)  # what the run did, still shown


@pytest.mark.parametrize(
    ("first", "then", "said"),
    [
        (["--param", "slow=40"], ["--param", "slow=90"], "fixed params 'slow=40', not 'slow=90'"),
        ([], ["--order-size", "0.01"], "order size"),
        ([], ["--timeframe", "5m"], "timeframe"),
    ],
    ids=["param", "order-size", "timeframe"],
)
def test_a_study_never_continues_with_other_fixed_settings(
    workdir: Path, two_days: Path, capsys: pytest.CaptureFixture[str], first: list[str],
    then: list[str], said: str,
) -> None:  # fmt: skip
    """The trials of `--param slow=40` and of `--param slow=90` were ranked together, and
    the best (a slow=40 trial) was stored as the best run with slow=90: another run than
    the one measured, its metrics not the trial's."""
    args = ["optimize", "--data", str(two_days), "--symbol", "BTC-PERP", "--strategy",
            "sma_cross", "--space", "fast=int:2:20", "--objective", "total_pnl", "-j", "1",
            "--trials", "1", "--study", "s5", "--no-store"]  # fmt: skip
    code, _, err = run_cli([*args, *first], capsys)
    assert code == 0, err
    code, _, err = run_cli([*args, *then], capsys)
    assert code == 2, err
    assert said in err and "use another --study name" in err, err
    assert len(err.strip().splitlines()) == 1, err
    storage = f"sqlite:///{workdir / 'data' / 'studies.sqlite'}"
    assert len(optuna.load_study(study_name="s5", storage=storage).trials) == 1
    code, _, err = run_cli([*args, *first], capsys)  # the same settings again: continued
    assert code == 0, err
