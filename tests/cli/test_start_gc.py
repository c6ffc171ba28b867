"""A command starts with the cyclic collector's young generation collected every
50,000 allocations, not every 700 (its imports make long-lived objects only), and the
caller's thresholds come back afterwards, also when the command fails."""

import gc
from collections.abc import Iterator

import pytest

from perps_bot.cli.app import main


@pytest.fixture
def odd_thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    odd = (777, 11, 13)
    gc.set_threshold(*odd)
    yield odd
    gc.set_threshold(*before)


class _Command:
    """Stands for the typer command: notes the thresholds it runs with."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, int]] = []

    def main(self, **_: object) -> int:
        self.seen.append(gc.get_threshold())
        return 0


def test_the_command_runs_with_the_start_thresholds(
    odd_thresholds: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    command = _Command()
    monkeypatch.setattr("typer.main.get_command", lambda app: command)
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert command.seen == [(50_000, 20, 100)]
    assert gc.get_threshold() == odd_thresholds


@pytest.mark.parametrize("argv", [["--version"], ["no-such-command"]])
def test_the_caller_s_thresholds_come_back(
    odd_thresholds: tuple[int, int, int], argv: list[str]
) -> None:
    with pytest.raises(SystemExit):
        main(argv)
    assert gc.get_threshold() == odd_thresholds
