"""The CLI keeps numpy's OpenBLAS to one thread (the bot does no matrix work; the
threads' spinning only takes CPU from the run), unless the environment chose."""

import os

import pytest

from perps_bot.cli.app import main


def _version() -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0


def test_one_blas_thread_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    _version()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"


def test_the_environment_s_choice_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    _version()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "4"
