"""A profile instrument's `contract_size` other than 1 is refused in a run whose
instruments come from the profile (dev, backtest), in one line, exit 2.

Measured on main: a dev or backtest run took it and did nothing with it. Its step and
minimum quantity were base units and every size and PnL ignored it, so a profile that
copied an exchange's "step 1 contract of 10 units" traded steps of 1 unit (a tenth of
what the exchange would), silently. A contract size is how an exchange counts orders;
exchange runs take it from the exchange's markets (venues.live.contracts) and a paper
venue counts nothing, so there is no sound meaning to give it there."""

from pathlib import Path

import pytest
import yaml

from tests.badinput.harness import assert_bad_input, run_main
from tests.badinput.inputs import MINUTE, candle_rows, write_rows

T0 = 1_704_067_200_000
CONTRACT = {"tick_size": 0.1, "step_size": 1, "min_quantity": 1, "contract_size": 10}


@pytest.fixture(autouse=True)
def _scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERPS_BOT__RUN__LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp_path / "data"))


def _profile(tmp: Path, instrument: dict[str, float]) -> str:
    path = tmp / "p.yaml"
    body = {"profile": "dev", "broker": {"kind": "mock"}, "instruments": {"BTC-PERP": instrument}}
    path.write_text(yaml.safe_dump(body))
    return str(path)


def test_a_dev_run_refuses_a_contract_size(tmp_path: Path) -> None:
    args = ["--profile", _profile(tmp_path, CONTRACT), "--dev-fast", "--duration", "1m"]
    line = assert_bad_input(run_main([*args, "--symbols", "BTC-PERP"]))
    assert "instruments.BTC-PERP: contract_size 10" in line, line


def test_a_backtest_refuses_a_contract_size(tmp_path: Path) -> None:
    data = write_rows(tmp_path / "c.csv", candle_rows(60, T0, MINUTE, 100.0))
    profile = _profile(tmp_path, CONTRACT)
    args = ["backtest", "--profile", profile, "--data", str(data), "--symbol", "BTC-PERP"]
    line = assert_bad_input(run_main([*args, "--strategy", "sma_cross", "--no-progress"]))
    assert "contract_size 10" in line and "base units" in line, line


def test_a_contract_size_of_one_is_fine(tmp_path: Path) -> None:
    profile = _profile(tmp_path, {**CONTRACT, "contract_size": 1})
    args = ["--profile", profile, "--dev-fast", "--duration", "1m", "--symbols", "BTC-PERP"]
    outcome = run_main(args)
    assert outcome.code == 0, outcome.err
