"""Shared fixtures. Tests never touch a real exchange and never write into the
repository's own logs/ or data/: each test that runs the bot gets a temp dir."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "freqtrade-testdata"


@pytest.fixture(autouse=True)
def _clean_perps_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's PERPS_BOT__* variables must not leak into tests."""
    for key in list(os.environ):
        if key.startswith("PERPS_BOT__"):
            monkeypatch.delenv(key)


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run with the repository as working directory (profiles are found relative to it)."""
    monkeypatch.chdir(REPO)
    yield REPO


@pytest.fixture
def run_dirs(tmp_path: Path) -> dict[str, str]:
    """Settings overrides that send logs and the database to a temp dir."""
    return {
        "log_dir": str(tmp_path / "logs"),
        "data_dir": str(tmp_path / "data"),
    }
