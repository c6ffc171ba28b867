"""A study continued (`--study NAME`) on other data: other funding or mark files, or
other candles over the same time range, ranked trials of different runs together (the
study's `about` had only the candles' time range). It is refused in one line, exit 2."""

from pathlib import Path

import optuna
import pyarrow as pa
import pyarrow.feather as pa_feather
import pytest

from tests.research.helpers import START_MS, run_cli, write_candles

EIGHT_HOURS = 8 * 3_600_000


def _funding(path: Path, rate: float) -> Path:
    ts = [START_MS + k * EIGHT_HOURS for k in range(7)]
    pa_feather.write_feather(pa.table({"date": ts, "open": [rate] * 7}), path)
    return path


def _args(data: Path, *more: str) -> list[str]:
    return ["optimize", "--data", str(data), "--symbol", "BTC-PERP", "--strategy", "sma_cross",
            "--space", "fast=int:2:20", "--param", "slow=40", "--objective", "total_pnl",
            "-j", "1", "--trials", "1", "--study", "data", "--no-store", *more]  # fmt: skip


@pytest.mark.parametrize("change", ["candles", "funding", "no-funding"])
def test_a_study_never_continues_on_other_data_of_the_same_range(
    workdir: Path, two_days: Path, capsys: pytest.CaptureFixture[str], change: str
) -> None:
    first = _args(two_days, "--funding", str(_funding(workdir / "f1.feather", 0.0001)))
    then = {
        "candles": _args(write_candles(workdir / "other.feather", 2 * 1440, seed=8),
                         "--funding", str(workdir / "f1.feather")),
        "funding": _args(two_days, "--funding", str(_funding(workdir / "f2.feather", 0.0005))),
        "no-funding": _args(two_days),
    }[change]  # fmt: skip
    code, _, err = run_cli(first, capsys)
    assert code == 0, err
    code, _, err = run_cli(then, capsys)
    assert code == 2, err
    assert "use another --study name" in err and len(err.strip().splitlines()) == 1, err
    assert "data" in err, err
    storage = f"sqlite:///{workdir / 'data' / 'studies.sqlite'}"
    assert len(optuna.load_study(study_name="data", storage=storage).trials) == 1
    code, _, err = run_cli(first, capsys)  # the same data again: continued
    assert code == 0, err
