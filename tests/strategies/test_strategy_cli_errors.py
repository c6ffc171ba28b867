"""A strategy the command line cannot run is one line on stderr and exit code 2 (never a
traceback or an 'internal error'): parameters out of range, and third-party classes that
do not keep the Strategy contract."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

RUN = ("--profile", "dev", "--dev-fast", "--duration", "1h")


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perps_bot", *RUN, "--db", str(tmp_path / "db.sqlite"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        # 8 GB per symbol on main (a MemoryError: 'internal error', exit 1; a smaller
        # window than this one takes the machine's memory instead)
        (("--param", "slow=100000000000"), "bad param 'slow'"),
        (("--strategy", "mean_reversion", "--param", "lookback=100000000000"), "'lookback'"),
    ],
)
def test_a_window_too_long_to_hold_is_a_bad_param(
    tmp_path: Path, args: tuple[str, ...], fragment: str
) -> None:
    _one_line(_cli(tmp_path, *args), fragment)


def test_a_strategy_whose_params_are_not_a_pydantic_model_is_refused(tmp_path: Path) -> None:
    # on main: "internal error: AttributeError: type object 'dict' has no attribute
    # 'model_fields'", exit 1
    (tmp_path / "odd_params_strat.py").write_text(
        textwrap.dedent(
            """
            from dataclasses import dataclass

            from perps_bot.strategies import NO_SIGNALS, Strategy

            @dataclass
            class Knobs:
                level: int = 1

            class DictParams(Strategy):
                name = "dict_params"
                Params = dict

                def on_event(self, event):
                    return NO_SIGNALS

            class DataclassParams(DictParams):
                name = "dataclass_params"
                Params = Knobs
            """
        )
    )
    for cls in ("DictParams", "DataclassParams"):
        result = _cli(tmp_path, "--strategy", f"odd_params_strat:{cls}")
        _one_line(result, "Params must be a pydantic BaseModel subclass")
