"""A per-symbol key naming a symbol the run does not know (a typo) is one line, exit 2:
it was silently ignored, and the run traded `strategy.default_order_size` (1 BTC
instead of 0.001) or the default leverage."""

from pathlib import Path

import pytest
import yaml

from tests.badinput.harness import assert_bad_input, run_main
from tests.badinput.inputs import MINUTE, candle_rows, write_rows

T0 = 1_704_067_200_000
RUN = ["--dev-fast", "--duration", "1m", "--symbols", "BTC-PERP"]
TYPOS = {
    "strategy.order_size": {"strategy": {"order_size": {"BTC-PREP": 0.001}}},
    "portfolios.a.order_size": {
        "portfolios": [{"id": "a", "strategy": "sma_cross", "order_size": {"btc-perp": 0.001}}]
    },
    "account.leverage": {"account": {"leverage": {"BTC-PREP": 2}}},
    "mock.symbols": {"mock": {"symbols": {"BTC-PREP": {"initial_price": 60000}}}},
    "instruments": {"instruments": {"btc-perp": {"tick_size": 0.1, "step_size": 0.001}}},
}


@pytest.fixture(autouse=True)
def _scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERPS_BOT__RUN__LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp_path / "data"))


def _profile(tmp: Path, body: dict[str, object]) -> str:
    path = tmp / "p.yaml"
    path.write_text(yaml.safe_dump({"profile": "dev", "broker": {"kind": "mock"}, **body}))
    return str(path)


@pytest.mark.parametrize("where", list(TYPOS))
def test_a_typo_in_a_symbol_key_is_refused(tmp_path: Path, where: str) -> None:
    outcome = run_main(["--profile", _profile(tmp_path, TYPOS[where]), *RUN])
    line = assert_bad_input(outcome, where)
    assert where in line and "unknown symbol" in line and "trades BTC-PERP" in line, line


def test_a_backtest_refuses_a_typo_too(tmp_path: Path) -> None:
    data = write_rows(tmp_path / "c.csv", candle_rows(60, T0, MINUTE, 100.0))
    profile = _profile(tmp_path, TYPOS["strategy.order_size"])
    args = ["backtest", "--profile", profile, "--data", str(data), "--symbol", "BTC-PERP"]
    line = assert_bad_input(run_main([*args, "--strategy", "sma_cross", "--no-progress"]))
    assert "'BTC-PREP'" in line, line


def test_a_key_for_a_known_symbol_not_traded_is_fine(tmp_path: Path) -> None:
    body = {
        "strategy": {"order_size": {"BTC-PERP": 0.001, "XRP-PERP": 10}},
        "account": {"leverage": {"ETH-PERP": 2}},
        "instruments": {"SOL-PERP": {"tick_size": 0.01, "step_size": 1}},
        "portfolios": [{"id": "a", "strategy": "sma_cross", "order_size": {"SOL-PERP": 1}}],
    }
    outcome = run_main(["--profile", _profile(tmp_path, body), *RUN])
    assert outcome.code == 0, outcome.err
