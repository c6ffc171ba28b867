"""`perps-bot walkforward`: windows never let a test window's candles reach the
optimiser, the out-of-sample run plays each window's own parameters inside its test
range only, and report and promote take the stored run."""

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perps_bot.config import ConfigError
from perps_bot.feeds.dataset import Dataset
from perps_bot.research import backends
from perps_bot.research.walkforward import plan_windows
from tests.metrics.metrics_builders import stage_profiles
from tests.research.helpers import run_cli, write_candles

DAY = 86_400_000


@given(
    start=st.integers(0, 10**12),
    span=st.integers(1, 400),
    train=st.integers(1, 60),
    test=st.integers(1, 30),
    extra=st.integers(0, 10),
    anchored=st.booleans(),
)
def test_windows_tile_the_data_without_overlap(
    start: int, span: int, train: int, test: int, extra: int, anchored: bool
) -> None:
    end, step = start + span * DAY, (test + extra) * DAY
    try:
        plans = plan_windows(start, end, train=train * DAY, test=test * DAY, step=step,
                             anchored=anchored)  # fmt: skip
    except ConfigError:
        assert train + test > span
        return
    for k, w in enumerate(plans):
        assert w.index == k
        assert start <= w.train_start < w.train_end == w.test_start < w.test_end <= end
        assert w.test_end - w.test_start == test * DAY
        assert w.train_start == start if anchored else w.train_end - w.train_start == train * DAY
        if k:
            assert w.test_start >= plans[k - 1].test_end  # test windows never overlap
    assert plans[-1].test_end + step > end  # no window left out


def test_a_step_shorter_than_the_test_window_is_refused() -> None:
    with pytest.raises(ConfigError, match="test windows would overlap"):
        plan_windows(0, 100 * DAY, train=10 * DAY, test=7 * DAY, step=3 * DAY)


@pytest.fixture(scope="module")
def twelve_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 days and the candle after them, whose open closes the last window's position."""
    return write_candles(tmp_path_factory.mktemp("wf") / "btc12.feather", 12 * 1440 + 1, seed=11)


LOOSE_PROMOTION = {"min_trades": 0, "min_days": 0, "min_win_rate": 0, "min_sharpe": -1000000,
                   "max_drawdown": 1, "max_error_lines": 1000}  # fmt: skip
LOOSE_PROFILE = f"""
profile: loose
broker: {{kind: mock}}
promotion: {json.dumps(LOOSE_PROMOTION)}
"""


def wf_args(data: Path, out: Path) -> list[str]:
    return ["walkforward", "--profile", "loose.yaml", "--data", str(data), "--symbol",
            "BTC-PERP", "--strategy", "sma_cross", "--space", "fast=int:2:12", "--space",
            "slow=int:15:60", "--train", "4d", "--test", "2d", "--trials", "4", "--objective",
            "total_pnl", "-j", "1", "--json", str(out)]  # fmt: skip


def _walkforward_report(
    workdir: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    """A walk-forward of `data` with the loose profile, and its JSON report."""
    (workdir / "loose.yaml").write_text(LOOSE_PROFILE)
    code, _, err = run_cli(wf_args(data, workdir / "wf.json"), capsys)
    assert code == 0, err
    code, out, err = run_cli(["report", "--profile", "loose.yaml", "--format", "json"], capsys)
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    return report


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[Dataset]:
    """Every dataset an optimisation's backend receives."""
    seen: list[Dataset] = []
    real = backends.make_backend

    def spy(job: Any, data: Dataset, **kwargs: Any) -> Any:
        seen.append(data)
        return real(job, data, **kwargs)

    monkeypatch.setattr(backends, "make_backend", spy)
    return seen


def test_test_windows_never_reach_the_optimiser_and_each_plays_its_params(
    workdir: Path, twelve_days: Path, recorded: list[Dataset], capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "loose.yaml").write_text(LOOSE_PROFILE)
    out = workdir / "wf.json"
    code, _, err = run_cli(wf_args(twelve_days, out), capsys)
    assert code == 0, err
    section = json.loads(out.read_text())
    windows = section["windows"]
    assert len(windows) == 4 and len(recorded) == 4
    for window, data in zip(windows, recorded, strict=True):
        test_start = _ms(window["test"][0])
        assert data.end_ts <= test_start  # not one candle of the test window
        assert data.start_ts >= _ms(window["train"][0])
        assert data.end_ts == test_start  # ... and the whole training window

    with sqlite3.connect(workdir / "data" / "perps_bot.loose.sqlite") as con:
        (run_id, kind) = con.execute("SELECT run_id, kind FROM runs").fetchone()
        fills = con.execute("SELECT ts, reason FROM fills WHERE run_id=?", (run_id,)).fetchall()
    assert run_id == section["run_id"] and kind == "walkforward"
    assert fills
    closes = 0
    for ts, reason in fills:
        if reason == "walkforward window end":  # filled at the open after a window's end
            assert any(_ms(w["test"][1]) < ts <= _ms(w["test"][1]) + 60_000 for w in windows)
            closes += 1
            continue
        (window,) = [w for w in windows if _ms(w["test"][0]) < ts <= _ms(w["test"][1])]
        # the window's own parameters made the signal
        assert reason.endswith(f"{window['params']['fast']}/{window['params']['slow']}"), reason
    assert closes >= 3  # every window but the last ends flat


def test_report_and_promote_take_the_walkforward_run(
    workdir: Path, twelve_days: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _walkforward_report(workdir, twelve_days, capsys)
    assert report["run"]["kind"] == "walkforward"
    section = report["walkforward"]
    assert section["trials"] == 16 and 0.0 <= section["dsr"] <= 1.0
    assert all(set(w) >= {"in_sample", "out_of_sample", "params"} for w in section["windows"])
    # the chosen trials' Sharpe ratios come from 4-day training windows: flagged (SPEC 15)
    chosen = [w for w in section["windows"] if w["in_sample"]["sharpe"] is not None]
    assert chosen, "no chosen trial has a Sharpe ratio: the case is not exercised"
    for w in chosen:
        (why,) = [x["reason"] for x in w["in_sample_warnings"] if x["metric"] == "sharpe"]
        assert why in (
            "from 3 returns of 1d (fewer than 30)",
            "from 4 returns of 1d (fewer than 30)",
        )

    # the canary profile asks for out-of-sample evidence and no more than the run's own
    stage_profiles(workdir, canary=LOOSE_PROMOTION | {"require_walkforward": True, "min_dsr": 0})
    args = ["promote", "--to", "canary", "--profile", "loose.yaml", "--target-db", "t.sqlite"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert "walkforward" in out and "dsr" in out


def _ms(text: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def test_each_window_out_of_sample_holds_the_trades_its_params_opened(
    workdir: Path, twelve_days: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A window's last position is closed at the open after its end (the window-end
    rule), so its close time is in the next window's range: it is still this window's
    trade (its parameters opened it), never the next window's."""
    report = _walkforward_report(workdir, twelve_days, capsys)
    windows = report["walkforward"]["windows"]
    with sqlite3.connect(workdir / "data" / "perps_bot.loose.sqlite") as con:
        closes = [ts for (ts,) in con.execute(
            "SELECT ts FROM fills WHERE reason = 'walkforward window end'")]  # fmt: skip
    assert closes, "no window ended with a position: the case is not exercised"
    trades = _round_trips(workdir, json.loads((workdir / "wf.json").read_text())["run_id"])
    for w in windows:
        start, end = _ms(w["test"][0]), _ms(w["test"][1])
        own = [t for t in trades if start < t.open_ts <= end]
        assert w["out_of_sample"]["trades"] == len(own), w["window"]
        assert w["out_of_sample"]["total_pnl"] == pytest.approx(sum(t.net_pnl for t in own))
    assert sum(w["out_of_sample"]["trades"] for w in windows) == report["metrics"]["trades"]


def _round_trips(workdir: Path, run_id: str) -> list[Any]:
    from perps_bot.metrics import build_report
    from perps_bot.storage import RunStore

    with RunStore(workdir / "data" / "perps_bot.loose.sqlite", read_only=True) as store:
        return list(build_report(store, run_id).trades)


def test_a_window_study_never_continues_on_other_training_candles(
    workdir: Path, twelve_days: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Window 0 of a 6-day training run saw days 0-6; a 4-day training run tests days
    4-6 after its window 0: continuing the same study there would choose parameters on
    trials that saw the test days (look-ahead). With the default names the rerun makes
    studies of its own (their names say the training range); a --study name reused on
    other windows is refused in one line."""
    import optuna

    (workdir / "loose.yaml").write_text(LOOSE_PROFILE)
    first = wf_args(twelve_days, workdir / "wf.json")
    first[first.index("--train") + 1] = "6d"
    first[first.index("--trials") + 1] = "2"
    second = [*first]
    second[second.index("--train") + 1] = "4d"
    for args in (first, second, first):  # the same windows again continue their studies
        code, out, err = run_cli(args, capsys)
        assert code == 0, err
    # ... and the run says so: --trials adds trials, each window's line counts its study's
    assert "2 trials added to each window's study" in out, out
    (line,) = [x for x in out.splitlines() if x.startswith("window 0:")]
    assert "4 trials tried in its study" in line, line
    code, out, _ = run_cli(["walkforward", "--help"], capsys)
    assert "Trials to add to each window's study" in " ".join(out.split()), out
    storage = f"sqlite:///{workdir / 'data' / 'studies.sqlite'}"
    trials = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(storage)}
    window0 = sorted(name for name in trials if "-w0-" in name)
    assert window0 == [
        "wf-sma_cross-BTC-PERP-total_pnl-w0-20240101T0000-20240105T0000",
        "wf-sma_cross-BTC-PERP-total_pnl-w0-20240101T0000-20240107T0000",
    ], sorted(trials)
    assert [trials[name] for name in window0] == [2, 4]  # 4d once; 6d twice

    code, _, err = run_cli([*first, "--study", "mine"], capsys)
    assert code == 0, err
    code, _, err = run_cli([*second, "--study", "mine"], capsys)
    assert code == 2, err
    assert "use another --study name" in err and len(err.strip().splitlines()) == 1, err


def test_a_window_whose_trials_never_traded_says_their_orders_were_denied(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """BTC-PERP at 1 USDT: every order is under the minimum notional, so no trial has a
    Sharpe ratio. The line said only 'failed or had an undefined objective'."""
    cheap = write_candles(workdir / "cheap.feather", 6 * 1440 + 1, price=1.0)
    (workdir / "loose.yaml").write_text(LOOSE_PROFILE)
    args = wf_args(cheap, workdir / "wf.json")
    args[args.index("total_pnl")] = "sharpe"
    code, _, err = run_cli(args, capsys)
    assert code == 2
    assert "window 0: no trial completed" in err
    assert "orders denied: BELOW_MIN_NOTIONAL" in err and "sharpe is undefined" in err, err


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--test", "30s"], "--test 30s is shorter than the 1m bars the strategy sees"),
        (["--test", "30m", "--timeframe", "1h"], "--test 30m is shorter than the 1h bars"),
        (["--train", "30m", "--timeframe", "1h"], "--train 30m is shorter than the 1h bars"),
    ],
)
def test_a_window_shorter_than_a_bar_is_one_line_and_exit_2(
    workdir: Path,
    twelve_days: Path,
    flags: list[str],
    says: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No bar closes inside such a test window, so the out-of-sample run tested nothing:
    on main it was stored (kind walkforward, no trade in any window) and exit 0."""
    (workdir / "loose.yaml").write_text(LOOSE_PROFILE)
    args = [*wf_args(twelve_days, workdir / "wf.json"), "--step", "3d"]  # a few windows
    for flag, value in zip(flags[::2], flags[1::2], strict=True):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    code, _, err = run_cli(args, capsys)
    assert code == 2, err
    assert says in err and len(err.strip().splitlines()) == 1, err
    assert not (workdir / "data" / "perps_bot.loose.sqlite").exists()


def test_the_days_of_evidence_are_the_tested_days_not_the_gaps_between_windows(
    workdir: Path, twelve_days: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--test 1d --step 3d: three windows test three days over a span of seven, flat in
    between. On main the `days` criterion counted the span (7 >= 5 passed), so a
    strategy reached canary on fewer tested days than the profile asks for."""
    (workdir / "strict.yaml").write_text(LOOSE_PROFILE.replace('"min_days": 0', '"min_days": 5'))
    args = wf_args(twelve_days, workdir / "wf.json")
    args[args.index("loose.yaml")] = "strict.yaml"
    args[args.index("--test") + 1] = "1d"
    args += ["--step", "3d"]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    assert len(json.loads((workdir / "wf.json").read_text())["windows"]) == 3
    code, out, err = run_cli(["report", "--profile", "strict.yaml", "--format", "json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    # the run's span is still shown as it is (and the candle that closed the last window)
    assert report["run"]["days"] == pytest.approx(7 + 1 / 1440)
    (days,) = [c for c in report["validation"]["criteria"] if c["name"] == "days"]
    assert days["value"] == 3.0 and not days["passed"], days
    stage_profiles(workdir, canary=LOOSE_PROMOTION | {"require_walkforward": True})
    args = ["promote", "--to", "canary", "--profile", "strict.yaml", "--target-db", "t.sqlite"]
    code, _, err = run_cli(args, capsys)
    assert code == 1 and "days = 3 (needs >= 5)" in err, err
