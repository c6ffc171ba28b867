"""Strategy params given through the environment arrive as strings (and lowercased
keys): a third-party strategy's float and int params get their types, and 'nan' or
'inf' is refused in one line like a non-finite number anywhere else in the config."""

from pathlib import Path

import pytest
from pydantic import BaseModel

from perps_bot.strategies import Strategy, StrategyError, validate_params
from tests.badinput.harness import assert_bad_input, run_main

SAMPLE = "tests.strategies.sample_strategy:MyStrategy"


class Loose(Strategy):
    """Params with no bounds of their own: nothing but the check stops nan."""

    name = "loose"

    class Params(BaseModel):
        threshold: float = 1.0
        window: int = 5
        cap: float = float("inf")  # a default may be infinite; a given value may not

    def on_event(self, event: object) -> list[object]:
        return []


def test_string_params_get_their_types() -> None:
    params = validate_params(Loose, {"threshold": "2.5", "window": "7"})
    assert params.model_dump() == {"threshold": 2.5, "window": 7, "cap": float("inf")}


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity", "1e400", float("nan")])
def test_non_finite_params_are_refused(value: object) -> None:
    with pytest.raises(StrategyError, match=r"bad param 'threshold': .*finite"):
        validate_params(Loose, {"threshold": value})


@pytest.mark.parametrize("value", ["inf", "nan"])
def test_a_run_refuses_a_non_finite_param_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {
        "PERPS_BOT__RUN__DATA_DIR": str(tmp_path / "data"),
        "PERPS_BOT__RUN__LOG_DIR": str(tmp_path / "logs"),
        "PERPS_BOT__STRATEGY__NAME": SAMPLE,
        "PERPS_BOT__STRATEGY__PARAMS__LEVEL": value,
    }
    outcome = run_main(["--profile", "dev", "--dev-fast", "--duration", "1m"], env)
    line = assert_bad_input(outcome)
    assert "'level'" in line, line
