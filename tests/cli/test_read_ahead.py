"""`perps-bot backtest --data FILE` starts reading its data files as the process starts,
before the options are parsed (cli.app `_read_ahead`, feeds.prefetch), with the
compiled hot path turned on first as the command itself does; any other command, or a
`backtest` word that is not the command, reads nothing ahead."""

from pathlib import Path

import pytest

from perps_bot import compiled
from perps_bot.cli import app
from perps_bot.feeds import prefetch

HEADER = "timestamp,open,high,low,close,volume\n"


def _csv(path: Path) -> Path:
    path.write_text(HEADER + "".join(f"{1704067200000 + k * 60_000},1,2,0.5,1.5,3\n"
                                     for k in range(50)))  # fmt: skip
    return path


@pytest.mark.parametrize("form", ["--data {}", "--data={}"])
def test_a_backtest_s_data_files_are_read_ahead(tmp_path: Path, form: str) -> None:
    first, second = _csv(tmp_path / "a.csv"), _csv(tmp_path / "b.csv")
    options = [part.format(path) for path in (first, second) for part in form.split()]
    app._read_ahead(["backtest", *options, "--symbol", "A-PERP", "--symbol", "B-PERP"])
    for path in (first, second):
        table = prefetch.take(path)
        assert table is not None and table.num_rows == 50


@pytest.mark.parametrize(
    "args",
    [
        ["report", "--data", "{}"],  # another command
        ["--profile", "backtest", "--data", "{}"],  # the bare command, a profile's name
        ["backtest", "--mark", "{}"],  # not a --data file
        [],
    ],
)
def test_nothing_else_is_read_ahead(tmp_path: Path, args: list[str]) -> None:
    path = _csv(tmp_path / "a.csv")
    app._read_ahead([arg.format(path) for arg in args])
    assert prefetch.take(path) is None


def test_turning_the_compiled_set_on_again_keeps_it_on() -> None:
    """The command turns it on after the read ahead did: still on, and said so."""
    if not compiled.activate():
        pytest.skip(f"no compiled build here: {compiled.describe()}")
    state = compiled.describe()
    assert compiled.activate()
    assert compiled.describe() == state and state.startswith("compiled hot path")
